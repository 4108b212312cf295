from django.db import models


class PendingCleanup(models.Model):
    """A job whose queue could not be deleted (NATS down); the sweep retries while the attempt is current."""

    job_id = models.BigIntegerField(unique=True)
    attempt = models.PositiveIntegerField(default=0)
    reason = models.CharField(max_length=200)
    tries = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)


class SweepRecord(models.Model):
    """The sweep's last look at a job (fixes.plan.Record): a condition must hold on two consecutive looks."""

    job_id = models.BigIntegerField(primary_key=True)
    data = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)


class ResultRecord(models.Model):
    """A result accepted for an image in one attempt: queued (waiting to be stored) or stored."""

    job_id = models.BigIntegerField()
    attempt = models.PositiveIntegerField()
    image = models.CharField(max_length=64)
    queued_at = models.FloatField()  # unix seconds
    stored = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job_id", "attempt", "image"], name="fixes_one_result_per_image")]
        indexes = [models.Index(fields=["job_id", "stored", "queued_at"])]
