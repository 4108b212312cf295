"""What the harness needs in Antenna's database: a superuser with a DRF token, a project, and a pipeline the
simulated workers' results fit; plus the source images and job of each test job."""

from __future__ import annotations

import datetime
import json
import os
import uuid

PROJECT_NAME = "Chaos harness"
ADMIN_EMAIL = "chaos@example.com"
# Loopback port 9 (discard) refuses at once: a thumbnail or crop fetch fails fast and never leaves the host.
IMAGE_BASE_URL = "http://127.0.0.1:9/chaos-images/"
FIRST_CAPTURE = datetime.datetime(2024, 1, 1, 22, 0, 0)


def seed_spec() -> dict:
    """CHAOS_SEED (JSON from the harness): the pipeline slug and the algorithms the simulated workers name."""
    return json.loads(os.environ["CHAOS_SEED"])


def seed(spec: dict) -> dict:
    """Create (once) what the harness works with; returns the token, project id and pipeline slug."""
    from ami.main.models import Project, Taxon, TaxonRank
    from ami.ml.models import Pipeline, ProcessingService
    from ami.ml.models.algorithm import Algorithm, AlgorithmCategoryMap
    from ami.ml.models.project_pipeline_config import ProjectPipelineConfig
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    users = get_user_model().objects
    user = users.filter(email=ADMIN_EMAIL).first() or users.create_superuser(email=ADMIN_EMAIL, password=None)
    token, _ = Token.objects.get_or_create(user=user)
    project = Project.objects.filter(name=PROJECT_NAME).first() or Project.objects.create(
        name=PROJECT_NAME, owner=user)  # also creates its default device, site, station and capture set

    # save_results() refuses a pipeline without a detection algorithm, and any algorithm key a result names
    # must be one of the pipeline's (PipelineNotConfigured otherwise): register what the workers send.
    detector, _ = Algorithm.objects.get_or_create(
        key=spec["detector"]["key"], defaults={"name": spec["detector"]["name"], "task_type": "localization"})
    classifier = Algorithm.objects.filter(key=spec["classifier"]["key"]).first()
    if classifier is None:
        labels = spec["labels"]
        category_map = AlgorithmCategoryMap.objects.create(
            data=[{"index": i, "label": label} for i, label in enumerate(labels)], labels=labels, version="1")
        classifier = Algorithm.objects.create(key=spec["classifier"]["key"], name=spec["classifier"]["name"],
                                              task_type="classification", category_map=category_map)
    # A database that has stored results before already holds the taxa its pipeline names. On an empty one,
    # Antenna creates a taxon on first sight without a lock: two first results stored at once both create it,
    # and one fails on the unique name (and stays unacked until a worker polls again).
    for label in spec["labels"]:
        Taxon.objects.get_or_create(name=label, defaults={"rank": TaxonRank.UNKNOWN})
    pipeline, _ = Pipeline.objects.get_or_create(slug=spec["pipeline"], defaults={"name": "Simulated workers"})
    pipeline.algorithms.set([detector, classifier])
    ProjectPipelineConfig.objects.get_or_create(project=project, pipeline=pipeline)
    # A pull-mode (async) processing service: no endpoint URL, the workers come to the API.
    service = ProcessingService.objects.filter(name="Simulated workers").first()
    if service is None:
        service = ProcessingService(name="Simulated workers", endpoint_url=None)
        service.save()  # not objects.create(): that probes the service's status over HTTP
    service.projects.add(project)
    service.pipelines.add(pipeline)
    return {"token": token.key, "project": project.pk, "pipeline": pipeline.slug}


def create_job(images: int, pipeline_slug: str) -> int:
    """`images` new source images in a new capture set, and an async_api ML job over it (not started)."""
    from ami.jobs.models import Job, JobDispatchMode, MLJob
    from ami.main.models import Project, SourceImage, SourceImageCollection
    from ami.ml.models import Pipeline

    project = Project.objects.get(name=PROJECT_NAME)
    pipeline = Pipeline.objects.get(slug=pipeline_slug)
    station = project.deployments.order_by("pk").first()
    batch = uuid.uuid4().hex[:12]  # (station, path) is unique: each job gets its own folder
    captures = [FIRST_CAPTURE + datetime.timedelta(minutes=10 * i) for i in range(images)]
    # queue_images_to_nats() skips an image whose url() is empty: a public base URL plus a path gives one.
    created = SourceImage.objects.bulk_create([
        SourceImage(path=f"chaos/{batch}/{when:%Y%m%d%H%M%S}.jpg", public_base_url=IMAGE_BASE_URL,
                    timestamp=when, project=project, deployment=station)
        for when in captures])
    collection = SourceImageCollection.objects.create(name=f"chaos {batch}", project=project, method="full")
    collection.images.set(created)
    job = Job.objects.create(name=f"chaos {images} images", project=project, pipeline=pipeline,
                             source_image_collection=collection, job_type_key=MLJob.key,
                             dispatch_mode=JobDispatchMode.ASYNC_API)
    return job.pk
