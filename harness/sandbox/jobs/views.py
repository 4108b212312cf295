"""Antenna's job API (v2) as external workers and people use it."""

from __future__ import annotations

import json
import logging
import random

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpResponse
from rest_framework import status
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from fixes.django import intake, reaper, runtime
from fixes.django.start import StartRefused
from fixes.jetstream import QueueUnavailable
from harness.sandbox.jobs import actions, scope, validation
from harness.sandbox.jobs.models import DispatchMode, Job, JobState, Pipeline, Project, SourceImage
from harness.sandbox.jobs.serializers import job_detail, job_summary

log = logging.getLogger(__name__)
# A 1x1 white GIF: what a worker downloads for image_url (it fetches without the auth header)
PIXEL = bytes.fromhex("47494638396101000100800000ffffff00000021f90401000000002c00000000010001000002024401003b")


@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def health(request):
    return Response({"status": "ok"})


def image(request, image_id: int):
    return HttpResponse(PIXEL, content_type="image/gif")


@api_view(["GET", "POST"])
def jobs(request):
    return _create_job(request) if request.method == "POST" else _list_jobs(request)


def _list_jobs(request):
    q = request.query_params
    for name, values in q.lists():
        validation.no_nul(values, f"query parameter {name}")
    qs = scope.visible(request, Job.objects.select_related("pipeline"))
    if q.get("pipeline__slug__in"):
        qs = qs.filter(pipeline__slug__in=[s for s in q["pipeline__slug__in"].split(",") if s])
    if q.get("dispatch_mode"):
        qs = qs.filter(dispatch_mode=q["dispatch_mode"])
    if q.get("incomplete_only") in ("1", "true", "True"):
        qs = qs.exclude(status__in=JobState.final_states())
    ids_only = q.get("ids_only") in ("1", "true", "True")
    limit, offset = validation.page(q, default_limit=1 if ids_only else 10)
    if ids_only:  # Antenna hands incomplete jobs out in random order
        rows = list(qs.values("id", "pipeline__slug"))
        random.shuffle(rows)
        page = [{"id": r["id"], "pipeline_slug": r["pipeline__slug"]} for r in rows[offset: offset + limit]]
        count = len(rows)
    else:
        count = qs.count()
        page = [job_summary(j) for j in qs[offset: offset + limit]]
    return Response({"count": count, "next": None, "previous": None, "results": page})


def _create_job(request):
    """Sandbox-only convenience: {"pipeline": slug, "images": N, "name": str, "start": bool}."""
    body = request.data if isinstance(request.data, dict) else {}
    n, slug = body.get("images"), body.get("pipeline")
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 100_000:
        raise ValidationError({"error": "images must be an integer between 0 and 100000"})
    if not isinstance(slug, str) or not slug:
        raise ValidationError({"error": "pipeline must be a pipeline slug"})
    with transaction.atomic():
        pipeline, _ = Pipeline.objects.get_or_create(slug=slug, defaults={"name": slug})
        project = Project.objects.create(name=body.get("project") or "sandbox")
        if not scope.unscoped(request.user):
            project.members.add(request.user)
        job = Job.objects.create(name=body.get("name") or f"{n} images", project=project, pipeline=pipeline,
                                 dispatch_mode=body.get("dispatch_mode") or DispatchMode.ASYNC_API)
        _add_images(job, n, request.build_absolute_uri("/media/images/"))
    if body.get("start"):
        job = actions.start(job.pk)
    return Response(job_detail(job), status=status.HTTP_201_CREATED)


def _add_images(job: Job, n: int, base_url: str) -> None:
    """n new images of the job's project, in the job, in two set-based statements: a job of the #1283
    incident's 44,286 images costs the database about a second of CPU (model instances and bulk_update: over
    a minute). An image's url names its own id, drawn from the table's sequence in the same statement."""
    images, members = SourceImage._meta.db_table, Job.images.through._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"insert into {images} (id, project_id, path, url) "
                       f"select id, %s, 'img_' || i || '.jpg', %s || id || '.gif' from "
                       f"(select nextval(pg_get_serial_sequence('{images}', 'id')) as id, i "
                       f"from generate_series(0, %s - 1) as i) as new", [job.project_id, base_url, n])
        cursor.execute(f"insert into {members} (job_id, sourceimage_id) select %s, id from {images} "
                       f"where project_id = %s", [job.pk, job.project_id])


@api_view(["GET"])
def job(request, job_id: int):
    job = scope.job_of(request, job_id)
    data = job_detail(job, logs=True)
    if request.query_params.get("queue") in ("1", "true"):
        try:
            data["queue"] = runtime.bridge().call(lambda q: q.snapshot(job_id, job.attempt)).to_dict()
        except QueueUnavailable:
            data["queue"] = None
    return Response(data)


def _control(request, job_id: int, action):
    scope.job_of(request, job_id)
    try:
        return Response(job_detail(action(job_id)))
    except StartRefused as refused:
        return Response({"error": str(refused), "status": refused.job.status, "job_id": job_id},
                        status=status.HTTP_409_CONFLICT)


@api_view(["POST"])
def run(request, job_id: int):
    return _control(request, job_id, actions.start)


@api_view(["POST"])
def retry(request, job_id: int):
    return _control(request, job_id, lambda pk: actions.start(pk, retry=True))


@api_view(["POST"])
def cancel(request, job_id: int):
    return _control(request, job_id, actions.cancel)


@api_view(["POST"])
def tasks(request, job_id: int):
    job = scope.job_of(request, job_id)
    size = validation.batch_size(request.data)
    if job.dispatch_mode != DispatchMode.ASYNC_API:
        raise ValidationError({"error": f"job {job_id} is not an async_api job"})
    if job.status not in (JobState.STARTED, JobState.RETRY):
        return Response({"tasks": []})
    handed = []
    for d in reaper.hand_out(job, size, timeout=settings.TASKS_FETCH_TIMEOUT):
        task = json.loads(d.data)
        handed.append({"id": str(task["id"]), "image_id": str(task["image_id"]),
                       "image_url": task["image_url"], "reply_subject": d.reply_subject})
    return Response({"tasks": handed})


@api_view(["POST"])
def result(request, job_id: int):
    from harness.sandbox.jobs.tasks import process_results

    job = scope.job_of(request, job_id)
    items = validation.results(request.data, settings.WORKER_MAX_RESULTS_PER_POST)
    _name_unnamed_images(job, items)
    _images_of_job(job, validation.result_image_ids(items))
    refused = intake.accept(job, [item["reply_subject"] for item in items], [item["result"] for item in items])
    accepted = [[item["reply_subject"], item["result"]] for item, why in zip(items, refused, strict=True) if why is None]
    task_id = ""
    if accepted:  # one task for the whole POST; a short argsrepr spares Celery a repr of every result
        task_id = process_results.apply_async(args=[job_id, accepted], argsrepr=f"({job_id}, <{len(accepted)} results>)").id
    for item, why in zip(items, refused, strict=True):
        if why:
            log.info("job %s: %s result %s", job_id, why, item["reply_subject"])
    answers = [{"reply_subject": item["reply_subject"], "status": why or "queued", "task_id": "" if why else task_id}
               for item, why in zip(items, refused, strict=True)]
    return Response({"status": "accepted", "job_id": job_id, "results_queued": len(accepted), "tasks": answers})


def _name_unnamed_images(job: Job, items: list[dict]) -> None:
    """An error result may say `image_id: null`; the fixes know which image was handed out under its reply
    subject. One that no handout names is refused: acked, it would never be counted."""
    unnamed = [item for item in items if "error" in item["result"] and item["result"].get("image_id") is None]
    if not unnamed:
        return
    for item, image in zip(unnamed, intake.handed_out_images(job, [i["reply_subject"] for i in unnamed]), strict=True):
        if image is None:
            raise ValidationError({"error": f"results[{items.index(item)}].result.image_id is null and its reply_subject "
                                            f"names no task handed out for job {job.pk}: the failed image is unknown"})
        item["result"]["image_id"] = image


def _images_of_job(job: Job, named: list[tuple[str, int | None]]) -> None:
    """A result for an image the job does not have would be acked and never counted: refuse it."""
    known = set(job.images.filter(pk__in={image for _, image in named}).values_list("pk", flat=True))
    for field, image in named:
        if image not in known:
            raise ValidationError({"error": f"{field} names image {image}, which is not an image of job {job.pk}"})


@api_view(["POST"])
def in_progress(request, job_id: int):
    """Extension (not in Antenna): a worker says it is still busy with these tasks (+WPI)."""
    job = scope.job_of(request, job_id)
    subjects = validation.reply_subjects(request.data)
    return Response({"job_id": job_id, "extended": intake.extend(job, subjects)})
