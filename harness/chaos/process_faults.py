"""Faults of the servers: NATS, Redis, the web app and Celery beat die, hang or forget."""

from __future__ import annotations

from harness.chaos.base import Fault, Target


class NatsKill(Fault):
    verb, help = "nats-kill", "SIGKILL nats-server (store kept); heal: start it again"

    def inject(self, target: Target, **args) -> dict:
        target.service("nats", "kill")
        return {}

    def heal(self, target: Target) -> dict:
        target.service("nats", "start")
        return {}


class NatsRestart(Fault):
    verb, help = "nats-restart", "restart nats-server; --wipe deletes its JetStream store (ephemeral storage)"
    one_shot = True

    def inject(self, target: Target, wipe: bool = False, **args) -> dict:
        target.service("nats", "restart", wipe=wipe)
        return {"wipe": wipe}

    def heal(self, target: Target) -> dict:
        target.service("nats", "start")  # a no-op when it came back
        return {}


class NatsPause(Fault):
    verb, help, positional, timed = "nats-pause", "SIGSTOP nats-server for SECONDS, then SIGCONT", "seconds", True

    def inject(self, target: Target, **args) -> dict:
        target.service("nats", "pause")
        return {}

    def heal(self, target: Target) -> dict:
        target.service("nats", "resume")
        return {}


class RedisRestart(Fault):
    verb, help = "redis-restart", "restart redis-server; it keeps nothing (progress and Celery queue gone)"
    one_shot = True

    def inject(self, target: Target, **args) -> dict:
        target.service("redis", "restart")
        return {}

    def heal(self, target: Target) -> dict:
        target.service("redis", "start")
        return {}


class RedisFlush(Fault):
    verb, help = "redis-flush", "FLUSHALL: every job's progress state (and the Celery queue) vanishes"
    one_shot = True

    def inject(self, target: Target, **args) -> dict:
        import redis

        with redis.Redis.from_url(target.redis_url, socket_timeout=5) as client:
            keys = client.dbsize()
            client.flushall()
        return {"keys": keys}


class WebKill(Fault):
    verb, help = "web-kill", "SIGKILL the web server (every gunicorn worker); heal: start it again"

    def inject(self, target: Target, **args) -> dict:
        target.service("web", "kill")
        return {}

    def heal(self, target: Target) -> dict:
        target.service("web", "start")
        return {}


class WebRestart(Fault):
    verb, help = "web-restart", "graceful restart of the web server"
    one_shot = True

    def inject(self, target: Target, **args) -> dict:
        target.service("web", "restart")
        return {}

    def heal(self, target: Target) -> dict:
        target.service("web", "start")
        return {}


class BeatDown(Fault):
    verb, help, positional, timed = "beat-down", "stop Celery beat (no sweeps) for SECONDS", "seconds", True

    def inject(self, target: Target, **args) -> dict:
        target.service("celery_beat", "stop")
        return {}

    def heal(self, target: Target) -> dict:
        target.service("celery_beat", "start")
        return {}


class CeleryDown(Fault):
    verb, help = "celery-down", "stop the Celery worker: results are accepted but nobody stores them; heal: start"

    def inject(self, target: Target, **args) -> dict:
        target.service("celery_worker", "stop")
        return {}

    def heal(self, target: Target) -> dict:
        target.service("celery_worker", "start")
        return {}


PROCESS_FAULTS = (NatsKill, NatsRestart, NatsPause, RedisRestart, RedisFlush, WebKill, WebRestart, BeatDown,
                  CeleryDown)
