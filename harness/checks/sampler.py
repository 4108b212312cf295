"""The observer: samples watched jobs a few times a second into the run's timeline.

Each tick appends one `sample` op per job (status, progress, NATS counts, Redis counts) and a
`status` op whenever a job's status or attempt changes. Every MAX_DELIVERIES advisory of a watched
job's stream becomes a `dead-letter` op. A read that fails is never swallowed: it becomes a
`sample-error` op ({source, jobs, error, unavailable}), `unavailable` telling "the source did not
answer" (down, paused, restarting) from a misread; the checks that judge sampled data read these.
It only reads: consumer_info does not count as a fetch, so sampling never moves a task towards max_deliver.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import threading

from harness.checks.nats_reader import is_unavailable, read_queues
from harness.checks.snapshot import Sources, read_redis, redis_client
from harness.checks.subjects import job_of_stream
from harness.history import History

MAX_DELIVERIES = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"
QUEUE_FIELDS = ("stream_exists", "consumer_exists", "messages", "first_seq", "last_seq", "num_pending",
                "num_ack_pending", "num_redelivered", "num_waiting")
SAMPLE_ERROR = "sample-error"


def unavailable_database(exc: BaseException) -> bool:
    import psycopg

    return isinstance(exc, psycopg.OperationalError)


def unavailable_redis(exc: BaseException) -> bool:
    import redis

    return isinstance(exc, redis.ConnectionError | redis.TimeoutError)


class Sampler:
    def __init__(self, sources: Sources, history: History, jobs: list[int], interval: float = 0.25):
        self.sources, self.history, self.jobs, self.interval = sources, history, jobs, interval
        self.names = sources.names()
        self.latest: dict[int, dict] = {}  # last sample per job, for a live display
        self.dead: dict[int, int] = {}  # MAX_DELIVERIES advisories seen per job
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._serve, name="sampler", daemon=True)
        self._db = self._redis = self._js = None

    def start(self) -> Sampler:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def sample_now(self, timeout: float = 5.0) -> None:
        """One extra tick right now (e.g. just before a count is expected to move)."""
        if self._loop is not None and self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._tick(), self._loop).result(timeout)
            except concurrent.futures.TimeoutError:
                pass  # the tick goes on in the loop and records its own reads
            except Exception as exc:
                self._error("sampler", list(self.jobs), exc, unavailable=False)

    # --- the loop ------------------------------------------------------------------------------------------

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()
            for conn in (self._db, self._redis):
                with contextlib.suppress(Exception):
                    conn.close()

    async def _main(self) -> None:
        import nats

        from fixes.jetstream.queue import servers

        nc = None
        while nc is None and not self._stop.is_set():
            try:
                nc = await nats.connect(servers(self.sources.nats_url), connect_timeout=1, max_reconnect_attempts=-1,
                                        reconnect_time_wait=0.25, error_cb=_quiet)
            except Exception:
                await asyncio.sleep(0.25)
        try:
            if nc is None:
                return
            await nc.subscribe(f"{MAX_DELIVERIES}.>", cb=self._dead_letter)
            self._js = nc.jetstream(timeout=0.5)
            self._ready.set()
            while not self._stop.is_set():
                try:
                    await self._tick()
                except Exception as exc:  # a bug in a tick must not end the sampling silently
                    self._error("sampler", list(self.jobs), exc, unavailable=False)
                await asyncio.sleep(self.interval)
        finally:
            self._ready.set()
            if nc is not None:
                with contextlib.suppress(Exception):
                    await nc.close()

    async def _tick(self) -> None:
        job_ids = list(self.jobs)
        if not job_ids or self._js is None:
            return
        rows = self._read("database", job_ids, lambda: self.sources.records.read_jobs(self._database(), job_ids), unavailable_database)
        if rows is None:
            return
        queues = await self._read_queues({job_id: row["attempt"] for job_id, row in rows.items()})
        progress = self._read("redis", job_ids, lambda: read_redis(self._redis_client(), job_ids), unavailable_redis,
                              reset="_redis")
        for job_id in job_ids:
            row = rows.get(job_id)
            if row is None:
                continue
            queue = queues.get(job_id)
            value = {"job": job_id, "status": row["status"], "attempt": row["attempt"], **row["progress"],
                     "queue": None if queue is None else {k: queue[k] for k in QUEUE_FIELDS},
                     "redis": None if progress is None else progress.get(job_id),
                     "dead": self.dead.get(job_id, 0)}
            before = self.latest.get(job_id)
            if before is None or (before["status"], before["attempt"]) != (value["status"], value["attempt"]):
                self.history.append("sampler", "status", "ok", {
                    "job": job_id, "status": value["status"], "attempt": value["attempt"],
                    "from": None if before is None else before["status"]})
            self.history.append("sampler", "sample", "ok", value)
            self.latest[job_id] = value

    async def _read_queues(self, attempts: dict[int, int]) -> dict[int, dict | None]:
        """Once NATS does not answer for one job, the others of this tick are not asked (one op, one timeout)."""
        out, failures = await read_queues(self._js, self.names, attempts, stop_when_down=True)
        for job_id, exc in failures:
            down = is_unavailable(exc)
            self._error("nats", [job_id] if not down else list(attempts), exc, down)
        return out

    async def _dead_letter(self, msg) -> None:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            advisory = json.loads(msg.data)
            job_id = job_of_stream(advisory["stream"])
            if job_id is not None and job_id in self.jobs:
                self.dead[job_id] = self.dead.get(job_id, 0) + 1
                self.history.append("nats", "dead-letter", "ok", {
                    "job": job_id, "stream_seq": advisory.get("stream_seq"), "deliveries": advisory.get("deliveries")})

    def _error(self, source: str, jobs: list[int], exc: BaseException, unavailable: bool) -> None:
        self.history.append("sampler", SAMPLE_ERROR, "fail", {
            "source": source, "jobs": jobs, "error": f"{type(exc).__name__}: {exc}"[:300], "unavailable": unavailable})

    # --- connections (reopened after a failure) ---------------------------------------------------------------

    def _database(self):
        if self._db is None or self._db.closed:
            import psycopg

            self._db = psycopg.connect(self.sources.database_url, connect_timeout=2, autocommit=True)
        return self._db

    def _redis_client(self):
        if self._redis is None:
            self._redis = redis_client(self.sources.redis_url)
        return self._redis

    def _read(self, source: str, jobs: list[int], read, unavailable, reset: str = "_db"):
        try:
            return read()
        except Exception as exc:
            self._error(source, jobs, exc, unavailable(exc))
            conn = getattr(self, reset)
            with contextlib.suppress(Exception):
                conn.close()
            setattr(self, reset, None)
            return None


async def _quiet(exc: Exception) -> None:
    """nats-py reports every failed reconnect; an outage is what chaos runs are for."""
