"""The sweep's decisions without servers: fixes.plan.run_once over in-memory fakes, River/Oban style.

The fakes hold what a host and NATS would: jobs with a status and an attempt, their counts, the snapshots NATS
answers. Hooks let a test land a Start, a cancel or a stored result between the look and the act."""

from __future__ import annotations

import dataclasses

from fixes.config import FixesConfig
from fixes.layout import QueueLayout
from fixes.model import Condition, JobCounts, QueueSnapshot
from fixes.plan import Action, Record, run_once

LAYOUT = QueueLayout(ack_wait=1.0, max_deliver=3)
CONFIG = FixesConfig(sweep_interval=1.0, stuck_grace=1.0)


class Clock:
    def __init__(self, now: float = 1_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class Job:
    status: str = "STARTED"
    attempt: int = 1
    counts: JobCounts = JobCounts(expected=5, processed=2)
    log: list = dataclasses.field(default_factory=list)


class Store:
    """fixes.plan.SweepStore in memory."""

    def __init__(self, jobs: dict[int, Job]):
        self.jobs, self.records, self.cleanups = jobs, {}, 0
        self.before_act = lambda: None  # a race: runs between the look and the act
        self.counts_error: Exception | None = None

    def running(self):
        return {i: j.attempt for i, j in self.jobs.items() if j.status in ("STARTED", "RETRY")}

    def previous(self, job_ids):
        return {i: Record.from_dict(self.records[i]) for i in job_ids if i in self.records}

    def counts(self, job_ids):
        return {i: self.counts_error or self.jobs[i].counts for i in job_ids}

    def save(self, records, running):
        self.records = {i: r.to_dict() for i, r in records.items()}  # round trip, as the ORM store does

    def fail(self, action: Action) -> bool:
        self.before_act()
        job = self.jobs[action.job_id]
        if job.status not in ("STARTED", "RETRY") or job.attempt != action.attempt:
            return False
        job.status = "FAILURE"
        job.log.append(action.assessment.reason)
        return True

    def warn(self, action: Action) -> None:
        self.jobs[action.job_id].log.append("WARNING " + action.assessment.reason)

    def complete(self, action: Action) -> bool:
        self.before_act()
        job = self.jobs[action.job_id]
        if job.status not in ("STARTED", "RETRY") or job.attempt != action.attempt:
            return False
        job.status = "SUCCESS"
        return True

    def retry_cleanups(self) -> int:
        self.cleanups += 1
        return 0


class Nats:
    """fixes.plan.QueueReader in memory: one snapshot per job, or unreachable from some job on."""

    def __init__(self, clock: Clock):
        self.clock, self.snaps, self.down_from = clock, {}, None

    def snapshots(self, jobs):
        out = {}
        for job_id in jobs:
            if self.down_from is not None and job_id >= self.down_from:
                out[job_id] = QueueSnapshot(taken_at=self.clock.now, job_id=job_id, reachable=False, server_id="A")
            else:
                out[job_id] = dataclasses.replace(self.snaps[job_id], taken_at=self.clock.now, server_time=self.clock.now)
        return out


def dead(job_id: int, server_id: str = "A") -> QueueSnapshot:
    """5 tasks published and delivered, none outstanding: 3 exhausted max_deliver (2 have results)."""
    return QueueSnapshot(taken_at=0, job_id=job_id, server_id=server_id, stream_exists=True, consumer_exists=True,
                         messages=5, first_seq=1, last_seq=5, delivered_stream_seq=5, delivered_consumer_seq=11)


def stuck(job_id: int, last_active: float) -> QueueSnapshot:
    return dataclasses.replace(dead(job_id), num_ack_pending=3, last_active=last_active)


def world(n: int = 1):
    clock = Clock()
    store, nats = Store({i: Job() for i in range(1, n + 1)}), Nats(clock)
    nats.snaps = {i: dead(i) for i in range(1, n + 1)}
    return clock, store, nats


def sweep(store, nats, clock, config=CONFIG):
    result = run_once(store, nats, LAYOUT, config, clock=clock)
    clock.now += config.sweep_interval
    return result


def test_a_dead_job_fails_on_the_second_look_with_its_reason():
    clock, store, nats = world()
    assert sweep(store, nats, clock).failed == []  # seen once: not yet
    result = sweep(store, nats, clock)
    assert result.failed == [1] and store.jobs[1].status == "FAILURE"
    assert "3 of 5 tasks exhausted max_deliver=3" in store.jobs[1].log[0]
    assert store.cleanups == 2


def test_a_start_landing_between_the_look_and_the_act_wins():
    clock, store, nats = world()
    sweep(store, nats, clock)

    def restart():
        store.jobs[1].attempt, store.jobs[1].status = 2, "PENDING"

    store.before_act = restart
    result = sweep(store, nats, clock)
    assert result.failed == [] and store.jobs[1].status == "PENDING"


def test_a_cancel_landing_between_the_look_and_the_act_wins():
    clock, store, nats = world()
    sweep(store, nats, clock)
    store.before_act = lambda: setattr(store.jobs[1], "status", "REVOKED")
    assert sweep(store, nats, clock).failed == [] and store.jobs[1].status == "REVOKED"


def test_a_retry_since_the_last_pass_restarts_the_confirmation():
    clock, store, nats = world()
    sweep(store, nats, clock)
    store.jobs[1].attempt = 2  # retried and running again: the look at attempt 1 proves nothing
    assert sweep(store, nats, clock).failed == []
    assert sweep(store, nats, clock).failed == [1]


def test_a_result_stored_between_two_looks_holds_the_verdict():
    clock, store, nats = world()
    sweep(store, nats, clock)
    store.jobs[1].counts = JobCounts(expected=5, processed=3)
    assert sweep(store, nats, clock).failed == []  # progress moved: not confirmed
    assert sweep(store, nats, clock).failed == [1]  # still dead on two looks in a row


def test_results_waiting_to_be_stored_keep_a_job_alive():
    clock, store, nats = world()
    store.jobs[1].counts = JobCounts(expected=5, processed=2, results_queued=3)
    for _ in range(3):
        assert sweep(store, nats, clock).failed == []


def test_nats_unreachable_mid_pass_judges_nobody_after_it():
    clock, store, nats = world(3)
    sweep(store, nats, clock)
    nats.down_from = 2
    result = sweep(store, nats, clock)
    assert result.unreachable and result.looked_at == 2
    assert result.failed == [1]  # judged before NATS stopped answering: dead on two looks
    assert store.cleanups == 1  # no cleanup retries while NATS is away
    assert all(Record.from_dict(store.records[i]).outage for i in (2, 3))
    nats.down_from = None  # dead before the outage and after it (no progress, same stream): confirmed
    assert sorted(sweep(store, nats, clock).failed) == [2, 3]


def test_a_server_restart_restarts_the_idle_clock_of_a_stuck_job():
    clock, store, nats = world()
    nats.snaps[1] = stuck(1, last_active=clock.now - 60)
    sweep(store, nats, clock)
    nats.snaps[1] = dataclasses.replace(stuck(1, last_active=clock.now - 60), server_id="B")
    result = sweep(store, nats, clock)
    assert result.failed == [] and Record.from_dict(store.records[1]).watch_since == clock.now - 1
    clock.now += LAYOUT.ack_wait * LAYOUT.max_deliver + CONFIG.stuck_grace + 1  # held tasks idle past their deadline
    assert sweep(store, nats, clock).failed == []  # stuck, seen once
    assert sweep(store, nats, clock).failed == [1]


def test_stuck_with_warn_logs_once_and_never_fails():
    clock, store, nats = world()
    nats.snaps[1] = stuck(1, last_active=clock.now - 60)
    config = dataclasses.replace(CONFIG, stuck_action="warn")
    results = [sweep(store, nats, clock, config) for _ in range(4)]
    assert [r.warned for r in results] == [[], [1], [], []]
    assert store.jobs[1].status == "STARTED" and len(store.jobs[1].log) == 1


def test_a_job_whose_counts_fail_is_skipped_and_the_others_go_on():
    clock, store, nats = world(2)
    store.counts_error = ConnectionError("redis down")
    result = sweep(store, nats, clock)
    assert sorted(result.skipped) == [1, 2] and result.failed == []


def test_the_sweep_switch_off_does_nothing():
    clock, store, nats = world()
    for _ in range(3):
        assert sweep(store, nats, clock, dataclasses.replace(CONFIG, sweep=False)).looked_at == 0
    assert store.jobs[1].status == "STARTED" and store.cleanups == 0


def test_a_lost_stream_fails_with_the_restart_named():
    clock, store, nats = world()
    nats.snaps[1] = dataclasses.replace(dead(1), num_pending=3, delivered_stream_seq=0)
    sweep(store, nats, clock)
    nats.snaps[1] = QueueSnapshot(taken_at=0, job_id=1, server_id="B")
    sweep(store, nats, clock)
    assert sweep(store, nats, clock).failed == [1]
    assert Condition.STREAM_LOST and "is gone" in store.jobs[1].log[0]


def test_a_reader_that_raises_is_an_outage_and_restarts_the_idle_clock():
    # a disconnected bridge raises at once instead of answering "unreachable"; after a partition that kept
    # the server id, a slow job must not be judged on idle time that ran while nobody could fetch
    clock, store, nats = world()
    nats.snaps[1] = stuck(1, last_active=clock.now - 60)
    real = nats.snapshots

    def disconnected(jobs):
        raise ConnectionError("not connected to NATS")

    nats.snapshots = disconnected
    result = sweep(store, nats, clock)
    assert result.unreachable and result.failed == [] and Record.from_dict(store.records[1]).outage
    nats.snapshots = real
    assert sweep(store, nats, clock).failed == []  # back: idle counts from now, not from before the outage
    assert sweep(store, nats, clock).failed == []


def test_a_finished_job_left_running_is_completed_on_the_second_look():
    # every task has a result, but the save that would have ended the job was lost (or there were no tasks)
    clock, store, nats = world(2)
    store.jobs[1].counts = JobCounts(expected=5, processed=5)
    store.jobs[2].counts = JobCounts(expected=0, processed=0)
    assert sweep(store, nats, clock).completed == []  # seen once: not yet
    result = sweep(store, nats, clock)
    assert sorted(result.completed) == [1, 2] and result.failed == []
    assert store.jobs[1].status == store.jobs[2].status == "SUCCESS"


def test_a_job_that_completes_itself_between_the_look_and_the_act_is_left_alone():
    clock, store, nats = world()
    store.jobs[1].counts = JobCounts(expected=5, processed=5)
    sweep(store, nats, clock)
    store.before_act = lambda: setattr(store.jobs[1], "status", "SUCCESS")
    assert sweep(store, nats, clock).completed == []
