"""The sweep's decisions without servers: fixes.sweep.run_once over in-memory fakes, River/Oban style.

The fakes hold what a host and NATS would: jobs with a status and an attempt, their counts, the snapshots NATS
answers. Hooks let a test land a Start, a cancel or a stored result between the look and the act."""

from __future__ import annotations

import dataclasses

from fixes.config import FixesConfig
from fixes.layout import QueueLayout
from fixes.model import Condition, JobCounts, QueueSnapshot
from fixes.plan import Action, Record, Waiting, start_overdue
from fixes.sweep import run_once

LAYOUT = QueueLayout(ack_wait=1.0, max_deliver=3)
CONFIG = FixesConfig(sweep_interval=1.0, stuck_grace=1.0, confirm_delay=0)  # the next pass confirms
QUICK = dataclasses.replace(CONFIG, confirm_delay=None)  # a confirming look a quarter interval later


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
    began_at: float | None = None  # when its attempt's Start began (PENDING jobs)
    reruns: list = dataclasses.field(default_factory=list)


class Store:
    """fixes.sweep.SweepStore in memory."""

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

    # jobs held up before NATS: PENDING (began_at: the app's AttemptRecord) and CANCELING
    def waiting(self):
        return {i: Waiting(j.attempt, "cancel" if j.status == "CANCELING" else "start", j.began_at)
                for i, j in self.jobs.items() if j.status in ("PENDING", "CANCELING")}

    def rerun(self, action: Action) -> bool:
        return self._held(action, "PENDING", lambda job: job.reruns.append(action.reason))

    def fail_start(self, action: Action) -> bool:
        return self._held(action, "PENDING", lambda job: (setattr(job, "status", "FAILURE"), job.log.append(action.reason)))

    def end_cancel(self, action: Action) -> bool:
        return self._held(action, "CANCELING", lambda job: (setattr(job, "status", "REVOKED"), job.log.append(action.reason)))

    def _held(self, action: Action, status: str, act) -> bool:
        self.before_act()
        job = self.jobs[action.job_id]
        if job.status != status or job.attempt != action.attempt:
            return False
        act(job)
        return True


class Nats:
    """fixes.sweep.QueueReader in memory: one snapshot per job, or unreachable from some job on."""

    def __init__(self, clock: Clock):
        self.clock, self.snaps, self.down_from = clock, {}, None
        self.leaderless: set[int] = set()  # jobs whose stream alone has no answer (the server answers)

    def snapshots(self, jobs):
        out = {}
        for job_id in jobs:
            if job_id in self.leaderless:
                out[job_id] = QueueSnapshot(taken_at=self.clock.now, job_id=job_id, reachable=False, server_id="A",
                                            unavailable="no answer within 5s", server_answering=True)
            elif self.down_from is not None and job_id >= self.down_from:
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
    result = run_once(store, nats, LAYOUT, config, clock=clock, wall=clock)
    clock.now += config.sweep_interval
    return result


def quick_sweep(store, nats, clock, config=QUICK):
    """A pass whose confirming look waits on the fake clock."""
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock.now += seconds

    began = clock.now
    result = run_once(store, nats, LAYOUT, config, clock=clock, wall=clock, sleep=sleep)
    clock.now = began + config.sweep_interval
    return result, slept


def test_a_dead_job_fails_in_the_pass_that_first_sees_it_after_a_confirming_look():
    clock, store, nats = world(2)
    store.jobs[2].counts = JobCounts(expected=5, processed=2, results_queued=3)  # alive: no second look for it
    seen = []
    real = nats.snapshots
    nats.snapshots = lambda jobs: (seen.append(sorted(jobs)), real(jobs))[1]
    result, slept = quick_sweep(store, nats, clock)
    assert result.failed == [1] and slept == [0.25] and seen == [[1, 2], [1]]
    assert "3 of 5 tasks exhausted max_deliver=3" in store.jobs[1].log[0]
    assert store.records[2]["counts"]["results_queued"] == 3


def test_progress_between_the_two_looks_of_a_pass_holds_the_verdict_to_the_next_pass():
    clock, store, nats = world()

    def sleep_and_store_a_result(seconds):
        clock.now += seconds
        store.jobs[1].counts = JobCounts(expected=5, processed=3)

    result = run_once(store, nats, LAYOUT, QUICK, clock=clock, wall=clock, sleep=sleep_and_store_a_result)
    assert result.failed == [] and store.jobs[1].status == "STARTED"
    clock.now += 1.0
    assert quick_sweep(store, nats, clock)[0].failed == [1]  # dead on the pass's two looks after that


def test_nats_gone_at_the_confirming_look_marks_an_outage_and_fails_nobody():
    clock, store, nats = world()

    def sleep_and_pause_nats(seconds):
        clock.now += seconds
        nats.down_from = 1

    result = run_once(store, nats, LAYOUT, QUICK, clock=clock, wall=clock, sleep=sleep_and_pause_nats)
    assert result.failed == [] and result.unreachable and store.records[1]["outage"] is True


def test_the_confirming_look_waits_at_most_half_an_interval_and_not_at_all_with_one_confirmation():
    assert FixesConfig(sweep_interval=60).confirm_after == 15
    assert FixesConfig(sweep_interval=60, confirm_delay=50).confirm_after == 30
    assert FixesConfig(sweep_interval=60, confirmations=1).confirm_after == 0


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


UNAVAILABLE = dataclasses.replace(CONFIG, unavailable_limit=5.0)


def test_a_queue_unanswered_for_unavailable_limit_fails_its_job_naming_the_cause():
    clock, store, nats = world(2)
    nats.snaps[1] = stuck(1, last_active=clock.now)  # a healthy job, then NATS goes away for good
    nats.snaps[2] = stuck(2, last_active=clock.now)
    nats.down_from = 1
    results = [sweep(store, nats, clock, UNAVAILABLE) for _ in range(7)]  # one pass a second
    assert [r.failed for r in results[:5]] == [[]] * 5  # 0..4 s without an answer: an outage, never acted on
    assert sorted(results[5].failed) == [1, 2]
    reason = store.jobs[1].log[-1]
    assert "no answer about job 1's queue for 5s" in reason and "NATS is not answering" in reason
    assert "3 of 5 tasks have no result" in reason


def test_a_reader_that_raises_for_unavailable_limit_fails_the_job_with_what_it_raised():
    clock, store, nats = world()
    nats.snaps[1] = stuck(1, last_active=clock.now)

    def bridge_gone(jobs):
        raise ConnectionError("nats: connection closed")

    nats.snapshots = bridge_gone
    results = [sweep(store, nats, clock, UNAVAILABLE) for _ in range(7)]
    assert [r.failed for r in results[:5]] == [[]] * 5 and results[5].failed == [1]
    assert "last answer: ConnectionError: nats: connection closed" in store.jobs[1].log[-1]


def test_an_answer_in_between_restarts_the_unavailable_clock():
    clock, store, nats = world()
    nats.snaps[1] = stuck(1, last_active=clock.now)
    for _ in range(3):
        nats.down_from = 1
        for _ in range(4):  # 4 s without an answer, below the limit
            assert sweep(store, nats, clock, UNAVAILABLE).failed == []
        nats.down_from = None
        nats.snaps[1] = stuck(1, last_active=clock.now)  # the workers carry on
        assert sweep(store, nats, clock, UNAVAILABLE).failed == []
    assert store.jobs[1].status == "STARTED"


def test_a_stream_without_a_leader_fails_alone_and_the_others_are_still_judged():
    clock, store, nats = world(3)
    nats.snaps[2] = stuck(2, last_active=clock.now)
    nats.snaps[3] = stuck(3, last_active=clock.now)
    nats.leaderless = {2}
    first = sweep(store, nats, clock, UNAVAILABLE)
    assert not first.unreachable and first.looked_at == 3
    assert Record.from_dict(store.records[3]).observation is not None  # judged after the silent one
    assert sweep(store, nats, clock, UNAVAILABLE).failed == [1]  # job 1 dead on two looks: judged as ever
    failed = [sweep(store, nats, clock, UNAVAILABLE).failed for _ in range(4)]
    assert failed == [[], [], [], [2]] and store.jobs[3].status == "STARTED"
    assert "not for stream job_2: it has no leader (its replicas lost quorum)" in store.jobs[2].log[-1]


def test_no_unavailable_limit_without_lost_detection_or_with_a_zero_limit():
    for config in (dataclasses.replace(UNAVAILABLE, unavailable_limit=0),
                   dataclasses.replace(UNAVAILABLE, stream_lost_detection=False)):
        clock, store, nats = world()
        nats.down_from = 1
        assert [sweep(store, nats, clock, config).failed for _ in range(10)] == [[]] * 10


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


REPLICATED = QueueLayout(ack_wait=1.0, max_deliver=3, replicas=3)
SPAN = dataclasses.replace(QUICK, replicated_span=6.0)


def test_a_replicated_stream_must_look_lost_for_replicated_span_before_its_job_fails():
    """On a cluster, "not found" may come from a node cut off from the others that still believes it leads and
    never heard of the stream: two quick looks are not enough; every look over replicated_span must agree."""
    clock, store, nats = world()
    nats.snaps[1] = QueueSnapshot(taken_at=0, job_id=1, server_id="B")  # "not found" on every look
    passes = [run_once(store, nats, REPLICATED, SPAN, clock=clock, wall=clock, sleep=lambda s: None).failed
              for _ in range(8) if not setattr(clock, "now", clock.now + 1)]
    assert passes[:6] == [[]] * 6 and passes[6] == [1]  # first seen at +1 s, failed at +7 s
    assert "is gone" in store.jobs[1].log[0]


def test_a_replicated_stream_seen_again_restarts_the_span():
    clock, store, nats = world()
    lost, found = QueueSnapshot(taken_at=0, job_id=1, server_id="B"), dead(1)
    found = dataclasses.replace(found, num_pending=3, delivered_stream_seq=0)
    for look in [lost] * 5 + [found] + [lost] * 5:  # a stale node's answers, then the cluster's, then stale again
        nats.snaps[1] = look
        clock.now += 1
        assert run_once(store, nats, REPLICATED, SPAN, clock=clock, wall=clock, sleep=lambda s: None).failed == []
    assert store.jobs[1].status == "STARTED"


def test_a_lost_stream_with_its_progress_state_gone_fails_though_results_were_queued():
    """A Redis flush took the queued results' Celery tasks and the job's progress state: they can never be
    counted (the result path fails a job whose state is missing), so they must not keep the job alive."""
    clock, store, nats = world()
    store.jobs[1].counts = JobCounts(expected=174, processed=84, results_queued=90, state_lost=True,
                                     published=174, published_server="A")
    nats.snaps[1] = QueueSnapshot(taken_at=0, job_id=1, server_id="B")
    sweep(store, nats, clock)
    assert sweep(store, nats, clock).failed == [1]
    assert "server restarted: id A → B" in store.jobs[1].log[0]
    assert "90 of 174 tasks have no result" in store.jobs[1].log[0]
    assert "progress state is gone" in store.jobs[1].log[0]


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
# --- jobs held up before NATS: a Start whose run never ran, a cancel that never ended -------------------

HELD = dataclasses.replace(CONFIG, start_timeout=5.0)


def held(status: str = "PENDING", began_ago: float | None = 0.0):
    clock, store, nats = world()
    store.jobs[1].status = status
    store.jobs[1].began_at = None if began_ago is None else clock.now - began_ago
    return clock, store, nats


def test_a_start_whose_run_never_ran_is_enqueued_again_once_then_failed_with_its_reason():
    clock, store, nats = held()
    assert [sweep(store, nats, clock, HELD).rerun for _ in range(5)] == [[]] * 5  # within start_timeout
    assert sweep(store, nats, clock, HELD).rerun == [1]
    assert "published nothing 5s after its Start" in store.jobs[1].reruns[0]
    assert [sweep(store, nats, clock, HELD).ended for _ in range(4)] == [[]] * 4  # the new run gets its own bound
    assert sweep(store, nats, clock, HELD).ended == [1]
    assert store.jobs[1].status == "FAILURE" and len(store.jobs[1].reruns) == 1
    assert "attempt 1 never started" in store.jobs[1].log[0] and "enqueued again 1 time(s)" in store.jobs[1].log[0]


def test_a_start_older_than_the_bound_is_acted_on_at_the_first_look():
    clock, store, nats = held(began_ago=60)
    assert sweep(store, nats, clock, HELD).rerun == [1]


def test_a_job_that_reached_started_is_no_longer_held():
    clock, store, nats = held(began_ago=4)
    sweep(store, nats, clock, HELD)
    store.jobs[1].status = "STARTED"  # its run published meanwhile
    assert sweep(store, nats, clock, HELD).rerun == [] and "waiting" not in store.records[1]


def test_a_new_start_restarts_the_clock():
    clock, store, nats = held(began_ago=60)
    sweep(store, nats, clock, HELD)  # enqueued again
    store.jobs[1].attempt, store.jobs[1].began_at = 2, clock.now  # a person pressed Start (taken over)
    assert [sweep(store, nats, clock, HELD).ended for _ in range(5)] == [[]] * 5
    assert sweep(store, nats, clock, HELD).rerun == [1]  # attempt 2's own bound, its own rerun
    assert store.jobs[1].status == "PENDING"


def test_a_start_or_cancel_landing_between_the_look_and_the_act_wins():
    clock, store, nats = held(began_ago=60)
    store.before_act = lambda: setattr(store.jobs[1], "attempt", 2)
    assert sweep(store, nats, clock, HELD).rerun == [] and store.jobs[1].reruns == []
    clock, store, nats = held(status="CANCELING", began_ago=None)
    for _ in range(5):
        sweep(store, nats, clock, HELD)
    store.before_act = lambda: setattr(store.jobs[1], "status", "REVOKED")  # the cancel finished by itself
    assert sweep(store, nats, clock, HELD).ended == [] and store.jobs[1].log == []


def test_a_rerun_that_raised_is_tried_again_on_the_next_pass():
    clock, store, nats = held(began_ago=60)
    broker_down = [True]

    def rerun(action):
        if broker_down[0]:
            raise ConnectionError("broker down")
        return Store.rerun(store, action)

    store.rerun = rerun
    assert sweep(store, nats, clock, HELD).skipped == [1] and Record.from_dict(store.records[1]).reruns == 0
    broker_down[0] = False
    assert sweep(store, nats, clock, HELD).rerun == [1] and Record.from_dict(store.records[1]).reruns == 1


def test_a_stuck_cancel_is_ended_a_bound_after_the_sweep_first_saw_it():
    clock, store, nats = held(status="CANCELING", began_ago=None)
    assert [sweep(store, nats, clock, HELD).ended for _ in range(5)] == [[]] * 5
    assert sweep(store, nats, clock, HELD).ended == [1]
    assert store.jobs[1].status == "REVOKED" and "CANCELING for 5s" in store.jobs[1].log[0]


def test_a_start_without_a_record_is_timed_from_the_first_look():
    clock, store, nats = held(began_ago=None)
    assert [sweep(store, nats, clock, HELD).rerun for _ in range(5)] == [[]] * 5
    assert sweep(store, nats, clock, HELD).rerun == [1]


def test_held_jobs_need_no_nats_and_the_sweep_switch_stops_it():
    clock, store, nats = held(began_ago=60)
    nats.down_from = 1
    assert sweep(store, nats, clock, HELD).rerun == [1]
    clock, store, nats = held(began_ago=60)
    assert sweep(store, nats, clock, dataclasses.replace(HELD, sweep=False)).rerun == []


def test_start_overdue_only_when_nothing_was_published_within_the_bound():
    assert start_overdue(began_at=0.0, published=False, now=5.0, config=HELD)
    assert not start_overdue(began_at=0.0, published=False, now=4.9, config=HELD)
    assert not start_overdue(began_at=0.0, published=True, now=60.0, config=HELD)
    assert not start_overdue(began_at=None, published=False, now=60.0, config=HELD)
