"""Real services for chaos runs, one class per service, all with the same lifecycle verbs."""

from harness.infra.base import RUN_ID, ManagedProcess, free_port, reap_orphans, stop_all
from harness.infra.celery import CeleryBeat, CeleryWorker
from harness.infra.django import DjangoServer
from harness.infra.nats import NatsServer
from harness.infra.postgres import PostgresServer
from harness.infra.ready import (
    CallableProbe,
    HttpProbe,
    LogProbe,
    PortProbe,
    Probe,
    ServiceNotReady,
    wait_until_ready,
)
from harness.infra.redis import RedisServer
from harness.infra.stack import Stack

__all__ = [
    "RUN_ID",
    "CallableProbe",
    "CeleryBeat",
    "CeleryWorker",
    "DjangoServer",
    "HttpProbe",
    "LogProbe",
    "ManagedProcess",
    "NatsServer",
    "PortProbe",
    "PostgresServer",
    "Probe",
    "RedisServer",
    "ServiceNotReady",
    "Stack",
    "free_port",
    "reap_orphans",
    "stop_all",
    "wait_until_ready",
]
