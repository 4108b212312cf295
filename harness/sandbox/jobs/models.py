"""A slice of Antenna's data model: enough to run async_api jobs and count their results."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class JobState(models.TextChoices):
    # Antenna's JobState values
    CREATED = "CREATED"
    PENDING = "PENDING"
    STARTED = "STARTED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    RETRY = "RETRY"
    CANCELING = "CANCELING"
    REVOKED = "REVOKED"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def running_states(cls):
        return [cls.PENDING, cls.STARTED, cls.RETRY, cls.CANCELING]

    @classmethod
    def final_states(cls):
        return [cls.SUCCESS, cls.FAILURE, cls.REVOKED]


class DispatchMode(models.TextChoices):
    INTERNAL = "internal"
    SYNC_API = "sync_api"
    ASYNC_API = "async_api"


class Project(models.Model):
    name = models.CharField(max_length=200)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="projects", blank=True)


class Pipeline(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)


class SourceImage(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="images")
    path = models.CharField(max_length=500)
    url = models.URLField(max_length=1000)


def empty_progress() -> dict:
    stage = lambda key, name, params: {  # noqa: E731
        "key": key,
        "name": name,
        "status": JobState.CREATED,
        "progress": 0.0,
        "params": [{"key": k, "name": k.replace("_", " ").title(), "value": 0} for k in params],
    }
    return {
        "summary": {"status": JobState.CREATED, "progress": 0.0},
        "stages": [
            stage("collect", "Collect", ["total_images"]),
            stage("process", "Process", ["processed", "remaining", "failed"]),
            stage("results", "Results", ["detections", "classifications", "captures"]),
        ],
    }


class Job(models.Model):
    name = models.CharField(max_length=200, default="")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="jobs")
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="jobs")
    images = models.ManyToManyField(SourceImage, related_name="jobs")
    status = models.CharField(max_length=20, choices=JobState.choices, default=JobState.CREATED)
    dispatch_mode = models.CharField(max_length=20, choices=DispatchMode.choices, default=DispatchMode.ASYNC_API)
    progress = models.JSONField(default=empty_progress)
    attempt = models.PositiveIntegerField(default=0)  # the job's epoch: one per Start (not in Antenna: the fixes' binding needs it)
    task_id = models.CharField(max_length=255, blank=True, default="")  # Celery id of the run task
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._loaded_status = self.status  # lets the transition hook see old → new

    def __str__(self):
        return f"Job {self.pk} ({self.status})"

    def stage(self, key: str) -> dict:
        return next(s for s in self.progress["stages"] if s["key"] == key)

    def stage_param(self, stage_key: str, param: str):
        return next(p["value"] for p in self.stage(stage_key)["params"] if p["key"] == param)

    def set_stage_params(self, stage_key: str, **values):
        for p in self.stage(stage_key)["params"]:
            if p["key"] in values:
                p["value"] = values[p["key"]]

    def log(self, message: str, level: str = "INFO"):
        JobLog.objects.create(job=self, level=level, message=message)


class JobLog(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="logs")
    level = models.CharField(max_length=10, default="INFO")
    message = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]


class ImageResult(models.Model):
    """One stored pipeline result (Antenna stores Detections/Classifications; counts are enough here)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="results")
    attempt = models.PositiveIntegerField()
    image = models.ForeignKey(SourceImage, on_delete=models.CASCADE, related_name="results")
    reply_subject = models.CharField(max_length=500)
    detections = models.PositiveIntegerField(default=0)
    classifications = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["job", "attempt", "image"])]
