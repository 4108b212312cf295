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


class AttemptRecord(models.Model):
    """One attempt of a job as the fixes saw it: when Start began it, and how many tasks it stored in NATS.
    What was published is the app's own record to compare the stream with (lost tasks), and a job that
    never got published (its run never ran) is seen by its age."""

    job_id = models.BigIntegerField()
    attempt = models.PositiveIntegerField()
    began_at = models.FloatField()  # unix seconds
    published = models.IntegerField(null=True)  # tasks stored in NATS; None until the publish finished
    published_at = models.FloatField(null=True)
    published_server = models.CharField(max_length=64, null=True)  # NATS server_id then: names a restart since

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job_id", "attempt"], name="fixes_one_record_per_attempt")]


class Handout(models.Model):
    """A task the server handed to a worker in one attempt: a posted reply subject must name one of these."""

    job_id = models.BigIntegerField()
    attempt = models.PositiveIntegerField()
    stream_seq = models.BigIntegerField()
    image = models.CharField(max_length=64, null=True)
    handed_at = models.FloatField()  # unix seconds, of the latest delivery

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job_id", "attempt", "stream_seq"],
                                               name="fixes_one_handout_per_task")]
