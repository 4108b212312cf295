"""JobQueue and NatsBridge against a real nats-server (JetStream, file storage)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from fixes.assess import assess
from fixes.config import FixesConfig
from fixes.jetstream import JobQueue, NatsBridge, QueueMissing, QueueUnavailable
from fixes.layout import QueueLayout, belongs_to_attempt, parse_reply_subject
from fixes.model import Condition, JobCounts, Observation
from harness.waiting import slowdown

pytestmark = pytest.mark.integration

NATS_SERVER = Path(sys.executable).parent / "nats-server"
FAST = QueueLayout(ack_wait=1.0, max_deliver=2, max_age=600.0)
PER_ATTEMPT = dataclasses.replace(FAST, per_attempt_consumer=True)
RETENTIONS = ["limits", "workqueue"]
job_ids = itertools.count(100)


# ---- servers ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def eventually(check, timeout: float = 10.0, interval: float = 0.05):
    """Poll `check` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        time.sleep(interval)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Server:
    def __init__(self, store: Path):
        self.port, self.store, self.proc = free_port(), store, None
        self.url = f"nats://127.0.0.1:{self.port}"

    def start(self) -> Server:
        args = [str(NATS_SERVER), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        eventually(lambda: port_open(self.port))
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM: the server writes its consumers' delivery state before it exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("nats")).start()
    yield srv
    srv.kill()


@pytest.fixture
def own_server(tmp_path):
    srv = Server(tmp_path / "store").start()
    yield srv
    srv.kill()


def run(url: str, layout: QueueLayout, scenario):
    """Run `scenario(queue)` on a fresh connection in a fresh loop."""

    async def main():
        queue = await JobQueue.connect(url, layout, max_reconnect_attempts=1)
        try:
            return await scenario(queue)
        finally:
            await queue.close()

    return asyncio.run(main())


async def until(check, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        await asyncio.sleep(interval)


# ---- JobQueue -----------------------------------------------------------------------------------------------


def test_create_publish_dedupes_by_msg_id_and_ensure_only_adds_missing(server):
    job = next(job_ids)

    async def scenario(q: JobQueue):
        await q.create(job)
        items = [(FAST.msg_id(job, 1, i), b"task %d" % i) for i in range(50)]
        assert await q.publish(job, items) == 50
        assert await q.publish(job, items) == 0  # a retried publish inside the dedupe window
        assert await q.publish(job, [(None, b"x")] * 3) == 3  # baseline: no ids, no dedupe
        assert (await q.snapshot(job)).messages == 53
        await q.ensure(job)
        await q._js.delete_consumer(FAST.stream(job), FAST.consumer(job))
        await q.ensure(job)
        snap = await q.snapshot(job)
        assert snap.consumer_exists and snap.messages == 53 and snap.num_pending == 53

    run(server.url, FAST, scenario)


def test_reserve_ack_and_concurrent_reserves_never_share_a_task(server):
    layout = dataclasses.replace(FAST, ack_wait=30.0)  # no redelivery during the test
    job = next(job_ids)

    async def scenario(q: JobQueue):
        await q.create(job)
        await q.publish(job, [(None, b"%d" % i) for i in range(25)])
        first = await q.reserve(job, 3, 1.0)
        assert [d.num_delivered for d in first] == [1, 1, 1]
        assert [d.stream_seq for d in first] == [1, 2, 3] and first[0].data == b"0"
        await q.ack_all(d.reply_subject for d in first)
        await until(lambda: _snap_is(q, job, num_ack_pending=0, num_pending=22))
        batches = await asyncio.gather(*(q.reserve(job, 5, 1.0) for _ in range(6)))
        seqs = [d.stream_seq for batch in batches for d in batch]
        assert len(seqs) == len(set(seqs)) == 22
        assert await q.reserve(job, 5, 0.2) == []

    run(server.url, layout, scenario)


def test_a_late_delivery_older_than_ack_wait_is_not_handed_out_again_in_two_hands(server):
    """A delivery that reaches a pooled puller after its pull gave up (a paused server answering late) waits
    for the next reserve. Once it waited an ack_wait the server has taken it back and hands it out again:
    handing out the late copy too would put one task in two workers' hands at once (soak seed 668199947)."""
    job = next(job_ids)

    async def scenario(q: JobQueue):
        await q.create(job)
        await q.publish(job, [(None, b"only")])
        puller = await q._checkout((job, FAST.consumer(job)))
        late = {"batch": 1, "expires": 500_000_000}  # a request whose answer nobody waits for
        await q._nc.publish(puller._subject, json.dumps(late).encode(), reply=f"{puller._inbox}.late")
        await until(lambda: _snap_is(q, job, num_ack_pending=1))
        await asyncio.sleep(FAST.ack_wait * 1.5)  # what the test is about: the late copy outlives its ack_wait
        await q._checkin((job, FAST.consumer(job)), puller)
        handed = await q.reserve(job, 5, 1.0)
        assert [d.num_delivered for d in handed] == [2]  # before: [1, 2], the same task twice

    run(server.url, FAST, scenario)


async def _snap_is(q: JobQueue, job: int, attempt: int | None = None, **expected) -> bool:
    snap = await q.snapshot(job, attempt if attempt is not None or not q.layout.per_attempt_consumer else 2)
    return all(getattr(snap, name) == value for name, value in expected.items())


@pytest.mark.parametrize("retention", RETENTIONS)
def test_max_deliver_exhaustion_is_quiescent_and_named_by_dead_letters(server, retention):
    layout = dataclasses.replace(PER_ATTEMPT, retention=retention)
    job = next(job_ids)

    async def scenario(q: JobQueue):
        assert await q.advisory_stream() == "advisories"
        await q.create(job, 1)
        await q.publish(job, [(None, b"task %d" % i) for i in range(4)])
        one, *_ = await q.reserve(job, 4, 1.0, 1)
        await q.ack_all([one.reply_subject])

        async def exhausted():
            await q.reserve(job, 4, 0.2, 1)  # dead tasks are only processed while someone fetches
            snap = await q.snapshot(job, 1)
            return snap if snap.quiescent else None

        snap = await until(exhausted, timeout=15)
        letters = await until(lambda: _letters(q, job, 1, count=3))
        assert [(d.stream_seq, d.deliveries) for d in letters] == [(2, 2), (3, 2), (4, 2)]
        assert await q.dead_letters(job, 2) == []  # another attempt's consumer: none of these
        assert await q.read_task(job, 3) == b"task 2"  # a dead task stays readable in both retentions
        assert (await q.read_task(job, 1) is None) == (retention == "workqueue")  # acked: gone from a workqueue
        assert await q.read_task(job, 99) is None
        return snap

    snap = run(server.url, layout, scenario)
    assert (snap.num_pending, snap.num_ack_pending, snap.last_seq) == (0, 0, 4)
    verdict = assess(Observation(snap, JobCounts(expected=4, processed=1)), layout, FixesConfig(confirmations=1))
    assert verdict.condition is Condition.DEAD_TASKS and verdict.dead == 3 and verdict.act
    if retention == "workqueue":
        assert verdict.evidence["stream_dead"] == 3  # acked tasks are deleted from a workqueue stream


async def _letters(q: JobQueue, job: int, attempt: int, count: int):
    letters = await q.dead_letters(job, attempt)
    return letters if len(letters) >= count else None


def test_delete_is_idempotent_and_missing_queues_are_reported(server):
    job = next(job_ids)

    async def scenario(q: JobQueue):
        assert await q.delete(job) is False
        await q.create(job)
        await q.publish(job, [(None, b"x")])
        await q.reserve(job, 1, 0.5)  # leaves a pooled pull subscription behind
        await q._js.delete_consumer(FAST.stream(job), FAST.consumer(job))
        snap = await q.snapshot(job)
        assert snap.reachable and snap.stream_exists and not snap.consumer_exists and snap.messages == 1
        with pytest.raises(QueueMissing) as missing:
            await q.reserve(job, 1, 0.5)
        assert missing.value.stream_exists
        assert await q.delete(job) is True
        assert await q.delete(job) is False
        snap = await q.snapshot(job)
        assert snap.reachable and not snap.stream_exists and not snap.consumer_exists
        with pytest.raises(QueueMissing) as missing:
            await q.reserve(job, 1, 0.5)
        assert not missing.value.stream_exists
        with pytest.raises(QueueMissing):
            await q.publish(job, [("id", b"x")])
        with pytest.raises(QueueMissing):
            await q.read_task(job, 1)

    run(server.url, FAST, scenario)


@pytest.mark.parametrize("retention", RETENTIONS)
@pytest.mark.parametrize("layout", [FAST, PER_ATTEMPT], ids=["one-consumer-name", "consumer-per-attempt"])
def test_a_stale_ack_buffered_across_a_reconnect_reaches_the_recreated_stream(own_server, retention, layout):
    """nats-facts Q9: the server matches an ack by stream, consumer and sequences only. A worker's +ACK for
    attempt 1, buffered by its client while NATS restarts, arrives after Start re-created the stream: with
    one consumer name it acks attempt 2's task; with a consumer per attempt the server drops it."""
    layout = dataclasses.replace(layout, retention=retention, ack_wait=30.0)
    job = next(job_ids)

    async def scenario(q: JobQueue):
        worker = await JobQueue.connect(own_server.url, layout, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
        try:
            await q.create(job, 1)
            await q.publish(job, [(None, b"old %d" % i) for i in range(5)])
            old = await q.reserve(job, 5, 1.0, 1)
            await q.delete(job)
            await q.create(job, 2)  # same stream name, same sequence numbers
            await q.publish(job, [(None, b"new %d" % i) for i in range(5)])
            new = await q.reserve(job, 5, 1.0, 2)
            assert [d.stream_seq for d in old] == [d.stream_seq for d in new]
            fenced = layout.per_attempt_consumer
            assert all(belongs_to_attempt(parse_reply_subject(d.reply_subject), layout, job, 2) for d in new)
            assert not any(belongs_to_attempt(parse_reply_subject(d.reply_subject), layout, job, 2)
                           for d in old) == fenced or not fenced
            own_server.stop()
            await until(lambda: _disconnected(worker))
            for d in old:  # what a worker's client does while NATS is away: buffer
                await worker._nc.publish(d.reply_subject, b"+ACK")
            own_server.start()
            await until(lambda: _connected(worker), timeout=15)
            await worker._nc.flush(timeout=5)
            await until(lambda: _connected(q), timeout=15)
            # attempt 2's tasks still to be done (in flight, or pending again if the kill lost the delivery
            # state), or taken by the stale acks
            expected = 5 if fenced else 0
            await until(lambda: _outstanding(q, job, expected), timeout=10)
            assert (await q.snapshot(job, 2)).outstanding == expected
        finally:
            await worker.close()

    async def main():
        q = await JobQueue.connect(own_server.url, layout, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
        try:
            await scenario(q)
        finally:
            await q.close()

    asyncio.run(main())


async def _outstanding(q: JobQueue, job: int, expected: int) -> bool:
    return (await q.snapshot(job, 2)).outstanding == expected


async def _disconnected(q: JobQueue) -> bool:
    return not q.is_connected


async def _connected(q: JobQueue) -> bool:
    return q.is_connected


def test_snapshot_reads_server_clock_and_in_progress_refreshes_last_active(server):
    job = next(job_ids)

    async def scenario(q: JobQueue):
        await q.create(job)
        await q.publish(job, [(None, b"slow")])
        (held,) = await q.reserve(job, 1, 1.0)
        before = await q.snapshot(job)
        assert before.server_time is not None and abs(before.server_time - time.time()) < 5
        assert before.last_active is not None and before.num_ack_pending == 1

        async def refreshed():
            await q.in_progress([held.reply_subject])
            snap = await q.snapshot(job)
            return snap.last_active > before.last_active

        await until(refreshed)
        with pytest.raises(ValueError):
            await q.ack_all(["$JS.API.STREAM.DELETE." + FAST.stream(job)])
        assert (await q.snapshot(job)).stream_exists

    run(server.url, FAST, scenario)


def test_snapshots_of_many_jobs_read_streams_from_list_pages_and_match_one_by_one(server, monkeypatch):
    """More jobs than one STREAM.LIST page (256), one of them with its consumer gone and one with its stream gone:
    the looks from the pages equal snapshot() of each job alone, clocks aside."""
    from fixes.jetstream import inspect

    jobs = [next(job_ids) for _ in range(300)]
    clocks = ("taken_at", "server_time", "last_active")

    async def scenario(q: JobQueue):
        await asyncio.gather(*(q.create(job) for job in jobs))
        await q.publish(jobs[0], [(None, b"a"), (None, b"b")])
        await q._js.delete_consumer(FAST.stream(jobs[1]), FAST.consumer(jobs[1]))
        await q.delete(jobs[2])
        listed = await q.stream_states(dict.fromkeys(jobs))
        assert set(listed) == set(jobs) - {jobs[2]} and listed[jobs[0]]["state"]["messages"] == 2
        looks = {}
        for at_least in (10**6, 1):
            monkeypatch.setattr(inspect, "LIST_AT_LEAST", at_least)
            found = await q.snapshots(dict.fromkeys(jobs), concurrency=64)
            looks[at_least] = {job: {k: v for k, v in snap.to_dict().items() if k not in clocks}
                               for job, snap in found.items()}
        assert looks[1] == looks[10**6]
        assert looks[1][jobs[0]]["num_pending"] == 2 and looks[1][jobs[0]]["last_seq"] == 2
        assert looks[1][jobs[1]]["stream_exists"] and not looks[1][jobs[1]]["consumer_exists"]
        assert not looks[1][jobs[2]]["stream_exists"]
        await asyncio.gather(*(q.delete(job) for job in jobs))

    run(server.url, FAST, scenario)


def _dies(q: JobQueue, job: int, attempt: int):
    """Publish one task and keep fetching without acking until it exhausts max_deliver."""
    async def go():
        await q.advisory_stream()  # before any task can die, as Start does
        await q.create(job, attempt)
        await q.publish(job, [(None, b"x")])

        async def exhausted():
            await q.reserve(job, 1, 0.2, attempt)
            return (await q.snapshot(job, attempt)).quiescent

        await until(exhausted, timeout=15)
        return await until(lambda: _letters(q, job, attempt, count=1))

    return go()


@pytest.mark.parametrize("name", ["advisories", "host_events"])
def test_dead_letters_are_read_from_the_hosts_advisory_stream_created_before(own_server, name):
    """Antenna creates `advisories` on $JS.EVENT.ADVISORY.> on every connect: the fixes read from it (under
    any name) and create nothing that overlaps it."""
    job = next(job_ids)

    async def scenario(q: JobQueue):
        await q._js.add_stream(name=name, subjects=["$JS.EVENT.ADVISORY.>"], max_age=3600)
        assert await q.advisory_stream() == name
        letters = await _dies(q, job, 1)
        assert [(d.stream_seq, d.deliveries) for d in letters] == [(1, 2)]
        assert await q._js.find_stream_name_by_subject("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.a.b") == name

    run(own_server.url, PER_ATTEMPT, scenario)


def test_the_hosts_advisory_stream_can_be_created_after_the_fixes_ran(own_server):
    job = next(job_ids)

    async def scenario(q: JobQueue):
        letters = await _dies(q, job, 1)  # the fixes capture first: they create the host's stream
        assert len(letters) == 1
        # what Antenna's TaskQueueManager does on every connect: both its forms must work
        await q._js.add_stream(name="advisories", subjects=["$JS.EVENT.ADVISORY.>"], max_age=3600)
        assert (await q._js.stream_info("advisories")).config.subjects == ["$JS.EVENT.ADVISORY.>"]
        streams = await q._api("STREAM.NAMES", {"subject": "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.a.b"})
        assert streams["streams"] == ["advisories"]  # one stream captures them: nothing of the fixes overlaps
        assert len(await _dies(q, next(job_ids), 1)) == 1

    run(own_server.url, PER_ATTEMPT, scenario)


def test_no_capture_when_the_host_names_no_advisory_stream(own_server):
    layout = dataclasses.replace(PER_ATTEMPT, advisory_stream=None)

    async def scenario(q: JobQueue):
        assert await q.advisory_stream() is None
        assert await q.dead_letters(1, 1) == []
        assert (await q._api("STREAM.NAMES"))["streams"] in (None, [])

    run(own_server.url, layout, scenario)


def test_connect_to_nothing_is_unavailable():
    async def scenario():
        await JobQueue.connect(
            f"nats://127.0.0.1:{free_port()}",
            FAST,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            connect_timeout=1,
        )

    with pytest.raises(QueueUnavailable):
        asyncio.run(scenario())


# ---- NatsBridge ---------------------------------------------------------------------------------------------


def test_bridge_from_sync_code_survives_a_server_kill(own_server):
    job = next(job_ids)
    bridge = NatsBridge(own_server.url, FAST)
    try:
        bridge.call(lambda q: q.create(job))
        assert bridge.call(lambda q: q.publish(job, [(None, b"%d" % i) for i in range(40)])) == 40
        with ThreadPoolExecutor(8) as pool:
            batches = list(pool.map(lambda _: bridge.call(lambda q: q.reserve(job, 5, 1.0)), range(8)))
        seqs = [d.stream_seq for batch in batches for d in batch]
        assert sorted(seqs) == list(range(1, 41))
        assert parse_reply_subject(batches[0][0].reply_subject).consumer == FAST.consumer(job)
        with pytest.raises(QueueMissing):
            bridge.call(lambda q: q.reserve(job + 10_000, 1, 0.5))

        own_server.kill()

        def fails_fast():
            began = time.monotonic()
            try:
                bridge.call(lambda q: q.reserve(job, 1, 1.0))
            except QueueUnavailable:
                return time.monotonic() - began
            return None

        assert eventually(fails_fast) < 0.5 * slowdown()  # no 5 s JetStream timeout while disconnected
        own_server.start()  # same port and store: the bridge reconnects on its own
        assert eventually(lambda: _reachable(bridge, job)).stream_exists
    finally:
        bridge.close()
    with pytest.raises(QueueUnavailable):
        bridge.call(lambda q: q.snapshot(job))


def _reachable(bridge: NatsBridge, job: int):
    try:
        return bridge.call(lambda q: q.snapshot(job))
    except QueueUnavailable:
        return None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_bridge_works_in_a_forked_child(own_server):
    job = next(job_ids)
    bridge = NatsBridge(own_server.url, FAST)
    try:
        bridge.call(lambda q: q.create(job))
        pid = os.fork()
        if pid == 0:  # child: a fresh thread and connection, the parent's are left alone
            code = 1
            try:
                code = 0 if bridge.call(lambda q: q.publish(job, [(None, b"from child")])) == 1 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert bridge.call(lambda q: q.snapshot(job)).messages == 1  # the parent's connection still works
    finally:
        bridge.close()


def test_bridge_started_before_nats_fails_fast_then_connects(tmp_path):
    srv = Server(tmp_path / "store")
    bridge = NatsBridge(srv.url, FAST, connect_timeout=0.5)
    try:
        with pytest.raises(QueueUnavailable):
            bridge.call(lambda q: q.snapshot(1))  # waits at most connect_timeout for the first connect
        began = time.monotonic()
        with pytest.raises(QueueUnavailable):
            bridge.call(lambda q: q.snapshot(1))
        assert time.monotonic() - began < 0.2 * slowdown()
        srv.start()
        snap = eventually(lambda: _reachable(bridge, 1))
        assert snap.reachable and not snap.stream_exists
    finally:
        bridge.close()
        srv.kill()


def test_a_late_delivery_goes_out_with_a_fresh_ack_wait(server):
    """A delivery that reached the pooled subscription after its pull gave up (a paused server answering
    late) waits there for the next pull, its ack_wait running: handed out as it is, NATS gives it to
    another worker moments after the first one got it (soak seed 390350504)."""
    job = next(job_ids)

    async def scenario(q: JobQueue):
        await q.create(job)
        await q.publish(job, [(None, b"task")])
        key = (job, q.layout.consumer(job, None))
        puller = await q._checkout(key)
        request = json.dumps({"batch": 1, "expires": 200_000_000}).encode()  # a pull nobody waits for
        await q._nc.publish(puller._subject, request, reply=f"{puller._inbox}.late")
        await until(lambda: _has_pending(puller))
        await q._checkin(key, puller)
        await asyncio.sleep(FAST.ack_wait * 0.7)  # the delivery ages in the subscription (the fault itself)
        late = await q.reserve(job, 1, 0.2)
        assert [d.num_delivered for d in late] == [1]
        assert await q.reserve(job, 1, FAST.ack_wait * 0.6) == []  # nobody else gets it within its ack_wait

    run(server.url, FAST, scenario)


async def _has_pending(puller) -> bool:
    return not puller._arrived.empty()
