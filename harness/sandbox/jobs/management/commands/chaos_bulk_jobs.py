"""Bulk setup for the sweep benchmark: many STARTED async jobs of one image each, without the web tier.

What POST /jobs/ + the run task leave behind, per job: the job row (STARTED, attempt 1) and its image, the
progress state in Redis, the attempt's stream and consumer holding its one task, and the AttemptRecord of the
publish. Rows go in with bulk_create, Redis in pipelines, and NATS over the bridge's one connection with
`--in-flight` jobs being created at once.
"""

import asyncio
import json
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from fixes.django import runtime
from fixes.django.models import AttemptRecord
from fixes.jetstream import JobQueue, QueueUnavailable
from harness.sandbox.jobs import progress
from harness.sandbox.jobs.models import DispatchMode, Job, JobState, Pipeline, Project, SourceImage

ROWS = 5000  # rows per INSERT
ATTEMPT = 1
RETRIES = 5
API_TIMEOUT = 30.0


class Command(BaseCommand):
    help = "Create --count STARTED async jobs of one image each (rows, Redis state, streams); print one JSON line."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--in-flight", type=int, default=64, help="jobs whose stream is being created at once")

    def handle(self, *args, count, in_flight, **options):
        began = time.perf_counter()
        jobs = _rows(count)
        rows_done = time.perf_counter()
        progress_of(jobs)
        redis_done = time.perf_counter()
        server = _queues(jobs, in_flight)
        nats_done = time.perf_counter()
        now = time.time()
        AttemptRecord.objects.bulk_create(
            [AttemptRecord(job_id=job_id, attempt=ATTEMPT, began_at=now, published=1, published_at=now,
                           published_server=server) for job_id in jobs], batch_size=ROWS)
        self.stdout.write(json.dumps({"jobs": len(jobs), "rows_seconds": rows_done - began,
                                      "redis_seconds": redis_done - rows_done, "nats_seconds": nats_done - redis_done,
                                      "seconds": time.perf_counter() - began}))


def _rows(count: int) -> dict[int, int]:
    """{job id: image id} of `count` new STARTED jobs."""
    pipeline, _ = Pipeline.objects.get_or_create(slug="moth-detector", defaults={"name": "moth-detector"})
    project = Project.objects.create(name="bulk")
    now = timezone.now()
    with transaction.atomic():
        images = SourceImage.objects.bulk_create(
            [SourceImage(project=project, path=f"img_{i}.jpg", url="") for i in range(count)], batch_size=ROWS)
        jobs = Job.objects.bulk_create(
            [Job(name=f"bulk {i}", project=project, pipeline=pipeline, status=JobState.STARTED,
                 dispatch_mode=DispatchMode.ASYNC_API, attempt=ATTEMPT, started_at=now) for i in range(count)],
            batch_size=ROWS)
        Job.images.through.objects.bulk_create(
            [Job.images.through(job_id=job.pk, sourceimage_id=image.pk) for job, image in zip(jobs, images, strict=True)],
            batch_size=ROWS)
    return {job.pk: image.pk for job, image in zip(jobs, images, strict=True)}


def progress_of(jobs: dict[int, int], chunk: int = 1000) -> None:
    """progress.initialise of every job, one pipeline per `chunk` jobs."""
    items = list(jobs.items())
    for at in range(0, len(items), chunk):
        pipe = progress.client().pipeline(transaction=False)
        for job_id, image_id in items[at:at + chunk]:
            keys = progress._keys(job_id)
            pipe.sadd(keys["process"], image_id)
            pipe.sadd(keys["results"], image_id)
            pipe.set(keys["total"], 1)
        pipe.execute()


def _queues(jobs: dict[int, int], in_flight: int) -> str | None:
    """Each job's stream and consumer with its one task, `in_flight` jobs at a time, over one connection of its
    own (a long API timeout: a server creating thousands of streams answers slowly); the server's id."""
    layout = runtime.layout()

    async def create_all():
        q = await JobQueue.connect(settings.NATS_URL, layout, api_timeout=API_TIMEOUT)
        gate = asyncio.Semaphore(in_flight)

        async def one(job_id: int, image_id: int) -> None:
            task = json.dumps({"id": f"{job_id}-{image_id}", "image_id": str(image_id), "image_url": "",
                               "job_id": job_id, "attempt": ATTEMPT}).encode()
            async with gate:
                for tries in range(RETRIES):  # both are idempotent: the same config, the same Nats-Msg-Id
                    try:
                        await q.create(job_id, ATTEMPT)
                        await q.publish(job_id, [(layout.msg_id(job_id, ATTEMPT, image_id), task)])
                        return
                    except QueueUnavailable:
                        if tries == RETRIES - 1:
                            raise

        try:
            await asyncio.gather(*(one(j, i) for j, i in jobs.items()))
            return q.server_id
        finally:
            await q.close()

    return asyncio.run(create_all())
