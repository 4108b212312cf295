"""NATS JetStream side of the fixes: a job's stream and consumer, the pull protocol, snapshots, dead letters,
and the sync bridge Django views and Celery tasks call through."""

from fixes.jetstream.bridge import NatsBridge
from fixes.jetstream.deadletters import DeadLetter
from fixes.jetstream.errors import QueueMissing, QueueUnavailable
from fixes.jetstream.queue import Delivery, JobQueue

__all__ = ["DeadLetter", "Delivery", "JobQueue", "NatsBridge", "QueueMissing", "QueueUnavailable"]
