"""Faults of the servers: NATS, Redis, the web app and Celery beat die, hang or forget."""

from __future__ import annotations

from typing import ClassVar

from harness.chaos.base import Fault, FaultTarget


class ServiceFault(Fault):
    """inject: one lifecycle action on one stack service; heal: another (by default start it again)."""

    service: ClassVar[str] = ""
    action: ClassVar[str] = ""
    heal_action: ClassVar[str] = "start"  # a no-op on a service that is already running

    def inject(self, target: FaultTarget, **args) -> dict:
        target.service(self.service, self.action)
        return {}

    def heal(self, target: FaultTarget) -> dict:
        target.service(self.service, self.heal_action)
        return {}


class NatsKill(ServiceFault):
    verb, help = "nats-kill", "SIGKILL nats-server (store kept); heal: start it again"
    service, action = "nats", "kill"


class NatsRestart(ServiceFault):
    verb, help = "nats-restart", "restart nats-server; --wipe deletes its JetStream store (ephemeral storage)"
    one_shot = True
    service, action = "nats", "restart"

    def inject(self, target: FaultTarget, wipe: bool = False, **args) -> dict:
        target.service(self.service, self.action, wipe=wipe)
        return {"wipe": wipe}


class NatsPause(ServiceFault):
    verb, help, positional, timed = "nats-pause", "SIGSTOP nats-server for SECONDS, then SIGCONT", "seconds", True
    service, action, heal_action = "nats", "pause", "resume"


class NatsFreeze(ServiceFault):
    verb, help = "nats-freeze", "SIGSTOP nats-server until healed: clients stay connected and hang; heal: SIGCONT"
    service, action, heal_action = "nats", "pause", "resume"


class RedisKill(ServiceFault):
    verb, help = "redis-kill", "SIGKILL redis-server (the broker too: no task can be sent); heal: start it, empty"
    service, action = "redis", "kill"


class NatsLoseWrites(Fault):
    verb, help, positional = ("nats-lose-writes", "crash of a lazily fsyncing nats-server: kill -9, and the disk "
                              "lacks JOB's last --tail N tasks (or, without JOB, everything since nats-disk-mark)",
                              "job")
    one_shot, positional_optional = True, True

    def inject(self, target: FaultTarget, job: int | None = None, tail: int = 0, **args) -> dict:
        from harness.checks.subjects import stream_name

        stream = stream_name(job) if job is not None else None
        target.service("nats", "lose_writes", stream=stream, tail=tail)
        return {"job": job, "tail": tail}

    def heal(self, target: FaultTarget) -> dict:
        target.service("nats", "start")
        return {}


class NatsDiskMark(Fault):
    verb, help = "nats-disk-mark", "the moment nats-server last synced its store: nats-lose-writes goes back to it"
    one_shot = True

    def inject(self, target: FaultTarget, **args) -> dict:
        target.service("nats", "mark_disk")
        return {}


class RedisRestart(ServiceFault):
    verb, help = "redis-restart", "restart redis-server; it keeps nothing (progress and Celery queue gone)"
    one_shot = True
    service, action = "redis", "restart"


class RedisFlush(Fault):
    verb, help = "redis-flush", "FLUSHALL: every job's progress state (and the Celery queue) vanishes"
    one_shot = True

    def inject(self, target: FaultTarget, **args) -> dict:
        import redis

        with redis.Redis.from_url(target.redis_url, socket_timeout=5) as client:
            keys = client.dbsize()
            client.flushall()
        return {"keys": keys}


class WebKill(ServiceFault):
    verb, help = "web-kill", "SIGKILL the web server (every gunicorn worker); heal: start it again"
    service, action = "web", "kill"


class WebRestart(ServiceFault):
    verb, help = "web-restart", "graceful restart of the web server"
    one_shot = True
    service, action = "web", "restart"


class BeatDown(ServiceFault):
    verb, help, positional, timed = "beat-down", "stop Celery beat (no sweeps) for SECONDS", "seconds", True
    service, action = "celery_beat", "stop"


class CeleryDown(ServiceFault):
    verb, help = "celery-down", "stop the Celery worker: results are accepted but nobody stores them; heal: start"
    service, action = "celery_worker", "stop"


class CeleryKill(ServiceFault):
    verb, help = "celery-kill", "SIGKILL the Celery worker with the tasks it runs; heal: start it again"
    service, action = "celery_worker", "kill"


PROCESS_FAULTS = (NatsKill, NatsRestart, NatsPause, NatsFreeze, NatsLoseWrites, NatsDiskMark, RedisKill,
                  RedisRestart, RedisFlush, WebKill, WebRestart, BeatDown, CeleryDown, CeleryKill)
