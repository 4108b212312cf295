from django.db import models


class PendingCleanup(models.Model):
    """A job whose queue could not be deleted (NATS down); the sweep retries until it succeeds."""

    job_id = models.BigIntegerField(unique=True)
    reason = models.CharField(max_length=200)
    tries = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)


class Observation(models.Model):
    """The sweep's previous look at a job: a condition must hold on two consecutive looks."""

    job_id = models.BigIntegerField(primary_key=True)
    data = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)
