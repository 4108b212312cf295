import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixes.assess import assess, cannot_be_dead_or_lost
from fixes.config import FixesConfig
from fixes.layout import QueueLayout
from fixes.model import LOST, Condition, JobCounts, Observation, QueueSnapshot

LAYOUT = QueueLayout(ack_wait=30.0, max_deliver=5)
TWO = FixesConfig()  # confirmations=2
ONE = FixesConfig(confirmations=1)
NOW = 10_000.0


def snap(**changes) -> QueueSnapshot:
    """A healthy Limits-retention job of 200 tasks, all delivered, nothing outstanding."""
    base = QueueSnapshot(
        taken_at=NOW,
        job_id=7,
        server_id="A",
        stream_exists=True,
        consumer_exists=True,
        messages=200,
        first_seq=1,
        last_seq=200,
        delivered_stream_seq=200,
        delivered_consumer_seq=400,
        last_active=NOW - 3,
        server_time=NOW,
    )
    return dataclasses.replace(base, **changes)


def obs(expected=200, processed=188, ids=(), **changes) -> Observation:
    return Observation(snap(**changes), JobCounts(expected, processed, 0, tuple(ids)))


def later(o: Observation, seconds=60.0, **changes) -> Observation:
    s = o.snapshot
    moved = {"taken_at": s.taken_at + seconds, "server_time": (s.server_time or s.taken_at) + seconds}
    return Observation(dataclasses.replace(s, **{**moved, **changes}), o.counts)


# ---- table ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "observation, condition, dead",
    [
        (obs(reachable=False), Condition.NATS_UNREACHABLE, 0),
        (obs(stream_exists=False, consumer_exists=False), Condition.STREAM_LOST, 12),
        (obs(consumer_exists=False), Condition.CONSUMER_LOST, 12),
        (obs(processed=200), Condition.FINISHED, 0),
        (obs(processed=201), Condition.FINISHED, 0),
        (obs(expected=0, processed=0), Condition.FINISHED, 0),
        (obs(), Condition.DEAD_TASKS, 12),
        (obs(num_pending=5, num_waiting=1), Condition.HEALTHY, 0),
        (obs(num_ack_pending=5, last_active=NOW - 10), Condition.HEALTHY, 0),
        (obs(num_pending=12, last_active=NOW - 36), Condition.STUCK_NO_FETCHER, 0),
        (obs(num_pending=12, last_active=NOW - 35), Condition.HEALTHY, 0),  # exactly ack_wait + grace
        (obs(num_pending=200, delivered_stream_seq=0, last_active=None), Condition.WAITING_FOR_WORKERS, 0),
        (obs(messages=0, last_seq=0, first_seq=0, delivered_stream_seq=0), Condition.HEALTHY, 0),
        (obs(num_ack_pending=3, last_active=None), Condition.HEALTHY, 0),
    ],
)
def test_conditions(observation, condition, dead):
    verdict = assess(observation, LAYOUT, ONE)
    assert verdict.condition is condition
    assert verdict.dead == dead


def test_dead_tasks_reason_lists_images_capped():
    ids = [str(i) for i in range(25)]
    verdict = assess(obs(expected=200, processed=175, ids=ids), LAYOUT, ONE)
    assert verdict.act and verdict.dead == 25
    assert verdict.reason.startswith(
        "25 of 200 tasks exhausted max_deliver=5 (ack_wait=30s); images: 0, 1, 2"
    )
    assert verdict.reason.endswith(", 19, … (+5 more)")


def test_dead_tasks_reason_without_ids():
    assert assess(obs(), LAYOUT, ONE).reason == "12 of 200 tasks exhausted max_deliver=5 (ack_wait=30s)"


def test_dead_tasks_reason_says_when_tasks_were_never_published():
    verdict = assess(obs(last_seq=150, messages=150), LAYOUT, ONE)
    assert verdict.condition is Condition.DEAD_TASKS and verdict.dead == 12
    assert verdict.reason.endswith("; only 150 of 200 tasks were ever published")


def test_workqueue_reports_stream_state_dead_count_as_evidence():
    layout = dataclasses.replace(LAYOUT, retention="workqueue")
    verdict = assess(obs(messages=12), layout, ONE)
    assert verdict.condition is Condition.DEAD_TASKS
    assert verdict.evidence["stream_dead"] == 12
    assert "stream_dead" not in assess(obs(messages=200), LAYOUT, ONE).evidence  # limits keeps acked tasks


def test_stream_lost_after_restart_names_both_server_ids():
    before = obs(num_ack_pending=4, server_id="A")
    now = later(before, stream_exists=False, consumer_exists=False, server_id="B")
    verdict = assess(now, LAYOUT, TWO, before)
    assert verdict.reason.startswith("NATS stream job_7 is gone (server restarted: id A → B)")
    assert not verdict.confirmed and not verdict.act
    confirmed = assess(later(now), LAYOUT, TWO, now)
    assert confirmed.confirmed and confirmed.act
    assert "stream deleted" in confirmed.reason  # same server id on both polls


def test_stream_lost_with_every_result_in_is_reported_but_not_acted_on():
    verdict = assess(obs(processed=200, stream_exists=False, consumer_exists=False), LAYOUT, ONE)
    assert verdict.condition is Condition.STREAM_LOST and not verdict.act


# ---- lost tasks: the stream exists but holds fewer tasks than the attempt published ------------------------

MAX_AGE = LAYOUT.max_age


def published(o: Observation, n: int = 200, at: float = NOW - 600, server: str | None = "A") -> Observation:
    return Observation(o.snapshot, dataclasses.replace(o.counts, published=n, published_at=at, published_server=server))


def lost_cause(verdict) -> str:
    assert verdict.condition is Condition.TASKS_LOST, verdict.reason
    return verdict.reason.split("(", 1)[1]


def test_an_empty_stream_after_a_publish_is_lost_not_waiting_for_a_first_task():
    empty = obs(messages=0, first_seq=0, last_seq=0, delivered_stream_seq=0, delivered_consumer_seq=0)
    assert assess(empty, LAYOUT, ONE).reason == "no task published yet"  # without the record: the old blind spot
    verdict = assess(published(empty), LAYOUT, ONE)
    assert verdict.act and verdict.dead == 12
    assert verdict.reason == ("12 of 200 tasks can never be handed out: they are gone from NATS stream job_7 "
                              "(lost writes: the stream is empty, 200 were published)")


def test_a_lost_tail_is_named_with_the_server_restart_seen_since_the_publish():
    tail = published(obs(processed=100, messages=150, last_seq=150, server_id="B"))
    verdict = assess(tail, LAYOUT, ONE)
    assert verdict.dead == 50  # 100 unprocessed, nothing pending: the 50 past seq 150 are gone
    assert lost_cause(verdict) == ("lost writes: the stream ends at seq 150, 200 were published; "
                                   "server restarted: id A → B)")
    assert "exhausted" not in verdict.reason


def test_lost_tasks_while_workers_still_hold_the_rest_fail_without_waiting_for_them():
    tail = published(obs(processed=0, messages=150, last_seq=150, num_pending=140, num_ack_pending=10))
    assert assess(tail, LAYOUT, ONE).dead == 50


def test_server_restart_is_named_from_the_look_before_when_the_publish_did_not_record_an_id():
    before = published(obs(processed=100, messages=150, last_seq=150, server_id="A"), server=None)
    now = later(before, server_id="B")
    assert lost_cause(assess(now, LAYOUT, TWO, before)).endswith("server restarted: id A → B)")


def test_a_purge_is_named_while_the_tasks_are_younger_than_max_age():
    purged = published(obs(processed=50, messages=0, first_seq=201, last_seq=200))
    assert lost_cause(assess(purged, LAYOUT, ONE)) == (
        "purged: 200 were published, it holds 0 (seq 201..200), younger than max_age 86400s)")


def test_an_age_out_is_named_once_the_publish_is_older_than_max_age():
    aged = published(obs(processed=50, messages=0, first_seq=201, last_seq=200), at=NOW - MAX_AGE - 5)
    verdict = assess(aged, LAYOUT, ONE)
    assert verdict.dead == 150
    assert lost_cause(verdict).startswith("aged out: published 86405s ago, the stream's max_age is 86400s")


@pytest.mark.parametrize("changes, counts", [
    ({}, {}),  # every task still there (limits keeps the processed ones)
    ({"messages": 150, "last_seq": 150}, {"published": None}),  # no record: an Antenna without the fixes' table
    ({"messages": 150, "last_seq": 150}, {"processed": 200}),  # finished: nothing to lose
    ({"messages": 150, "last_seq": 150, "num_pending": 12}, {}),  # every unprocessed task is still pending
    ({"messages": 150, "last_seq": 150}, {"results_queued": 12}),  # results in hand for every unprocessed one
])
def test_no_loss_without_proof(changes, counts):
    o = published(obs(**changes))
    o = Observation(o.snapshot, dataclasses.replace(o.counts, **counts))
    assert assess(o, LAYOUT, ONE).condition is not Condition.TASKS_LOST


def test_workqueue_expects_acked_tasks_to_have_left():
    layout = dataclasses.replace(LAYOUT, retention="workqueue")
    healthy = published(obs(processed=188, messages=12, first_seq=189, last_seq=200))
    assert assess(healthy, layout, ONE).condition is Condition.DEAD_TASKS  # exhausted, still in the stream
    purged = published(obs(processed=188, messages=0, first_seq=201, last_seq=200))
    assert lost_cause(assess(purged, layout, ONE)).startswith("purged: 200 were published, it holds 0")


def test_lost_tasks_are_confirmed_on_two_looks_of_the_same_stream_and_gated_by_the_switch():
    first = published(obs(processed=100, messages=150, last_seq=150))
    assert not assess(first, LAYOUT, TWO).act
    second = later(first, num_pending=0)
    assert assess(second, LAYOUT, TWO, first).act and assess(second, LAYOUT, TWO, first).condition is Condition.TASKS_LOST
    assert not assess(later(first, last_seq=151, messages=151), LAYOUT, TWO, first).confirmed  # still publishing?
    off = FixesConfig(confirmations=1, stream_lost_detection=False)
    assert assess(first, LAYOUT, off).condition is Condition.DEAD_TASKS  # what it was before: no silent change


def queued(o: Observation, n: int) -> Observation:
    return Observation(o.snapshot, dataclasses.replace(o.counts, results_queued=n))


def test_results_waiting_to_be_stored_keep_a_quiescent_job_alive():
    verdict = assess(queued(obs(), 12), LAYOUT, ONE)
    assert verdict.condition is Condition.HEALTHY and not verdict.act
    assert verdict.reason == "12 results accepted and waiting to be stored"
    stuck = assess(queued(obs(num_pending=12, last_active=NOW - 600), 1), LAYOUT, ONE)
    assert stuck.condition is Condition.HEALTHY


def test_stream_lost_counts_only_tasks_without_a_result_in_hand():
    gone = obs(stream_exists=False, consumer_exists=False)
    assert assess(queued(gone, 4), LAYOUT, ONE).dead == 8
    covered = assess(queued(gone, 12), LAYOUT, ONE)
    assert covered.condition is Condition.STREAM_LOST and covered.dead == 0 and not covered.act


def test_stuck_reason_and_switches():
    o = obs(num_pending=12, last_active=NOW - 42, server_time=NOW)
    layout = dataclasses.replace(LAYOUT, ack_wait=1.0)
    verdict = assess(o, layout, ONE)
    assert verdict.reason == "12 tasks waiting, no worker has fetched for 42s (ack_wait=1s)"
    assert verdict.act
    assert assess(o, layout, dataclasses.replace(ONE, stuck_action="warn")).act  # the sweep plan warns instead
    assert not assess(o, layout, dataclasses.replace(ONE, stuck_detection=False)).act


def test_stuck_uses_server_clock_not_client_clock():
    skewed = obs(num_pending=5, taken_at=NOW + 3600, server_time=NOW, last_active=NOW - 3)
    assert assess(skewed, LAYOUT, ONE).condition is Condition.HEALTHY
    no_server_time = obs(num_pending=5, taken_at=NOW + 3600, server_time=None, last_active=NOW - 3)
    assert assess(no_server_time, LAYOUT, ONE).condition is Condition.STUCK_NO_FETCHER


def test_stuck_not_when_results_still_arrive():
    before = obs(processed=100, num_ack_pending=5, last_active=NOW - 100)
    now = Observation(later(before).snapshot, JobCounts(200, 110))
    assert assess(now, LAYOUT, ONE, before).condition is Condition.HEALTHY


def test_stuck_confirmation_requires_still_counts():
    before = obs(processed=100, num_ack_pending=5, last_active=NOW - 200)
    now = later(before)
    assert assess(now, LAYOUT, TWO, before).act
    assert not assess(now, LAYOUT, TWO, None).act


def test_a_batch_held_by_a_live_worker_is_not_stuck_on_idle_time_alone():
    # one worker holds the last 5 tasks for 100 s (> ack_wait + grace = 35 s) with nobody else polling: NATS
    # redelivers nothing, so only the deadline NATS gives a task over all its deliveries (30 s x 5) says dead
    before = obs(processed=100, num_ack_pending=5, last_active=NOW - 100)
    assert assess(later(before, 1), LAYOUT, TWO, before).condition is Condition.HEALTHY
    held_too_long = later(before, 60)  # idle 160 s > 30 s x 5 + 5 s
    assert assess(held_too_long, LAYOUT, TWO, later(before, 10)).condition is Condition.STUCK_NO_FETCHER
    redelivered = later(before, 1, num_redelivered=2)  # NATS took tasks back from their holder since the last look
    assert assess(redelivered, LAYOUT, ONE, before).condition is Condition.STUCK_NO_FETCHER
    nothing_held = obs(processed=100, num_pending=5, last_active=NOW - 100)  # tasks wait, nobody holds any
    assert assess(nothing_held, LAYOUT, ONE).condition is Condition.STUCK_NO_FETCHER


def test_dead_tasks_confirmation_rejects_moving_stream_or_counts():
    before = obs(processed=150)
    assert not assess(later(before, last_seq=210, messages=210), LAYOUT, TWO, before).confirmed
    moved = Observation(later(before).snapshot, JobCounts(200, 160))
    assert not assess(moved, LAYOUT, TWO, before).confirmed
    assert assess(later(before), LAYOUT, TWO, before).act


def test_stream_lost_detection_switch():
    o = obs(stream_exists=False, consumer_exists=False)
    assert assess(o, LAYOUT, ONE).act
    assert not assess(o, LAYOUT, dataclasses.replace(ONE, stream_lost_detection=False)).act


def test_observation_json_round_trip():
    o = obs(ids=("3", "17"))
    restored = Observation.from_dict(json.loads(json.dumps(o.to_dict())))
    assert restored == o


def test_snapshot_from_dict_ignores_unknown_keys():
    data = {**snap().to_dict(), "future_field": 1}
    assert QueueSnapshot.from_dict(data) == snap()


# ---- properties -------------------------------------------------------------------------------------------

counts_ = st.builds(
    JobCounts,
    expected=st.integers(0, 500),
    processed=st.integers(0, 600),
    failed=st.integers(0, 10),
    unprocessed_image_ids=st.lists(st.text(min_size=1, max_size=4), max_size=30).map(tuple),
    published=st.none() | st.integers(0, 500),
    published_at=st.none() | st.floats(0, 1e6, allow_nan=False),
    published_server=st.sampled_from([None, "A", "B"]),
)
times = st.floats(0, 1e6, allow_nan=False)
snapshots = st.builds(
    QueueSnapshot,
    taken_at=times,
    job_id=st.integers(1, 50),
    reachable=st.booleans(),
    server_id=st.sampled_from([None, "A", "B"]),
    stream_exists=st.booleans(),
    consumer_exists=st.booleans(),
    messages=st.integers(0, 500),
    first_seq=st.integers(0, 500),
    last_seq=st.integers(0, 500),
    num_pending=st.integers(0, 50),
    num_ack_pending=st.integers(0, 50),
    num_waiting=st.integers(0, 3),
    num_redelivered=st.integers(0, 50),
    delivered_stream_seq=st.integers(0, 500),
    delivered_consumer_seq=st.integers(0, 1000),
    last_active=st.none() | times,
    server_time=st.none() | times,
)
observations = st.builds(Observation, snapshots, counts_)
configs = st.builds(
    FixesConfig,
    stuck_detection=st.booleans(),
    stream_lost_detection=st.booleans(),
    stuck_action=st.sampled_from(["fail", "warn"]),
    stuck_grace=st.floats(0, 60),
    confirmations=st.integers(1, 3),
)
layouts = st.builds(
    QueueLayout,
    retention=st.sampled_from(["limits", "workqueue"]),
    ack_wait=st.floats(0.5, 600),
    max_deliver=st.integers(1, 10),
)
ACTIONABLE = {
    Condition.DEAD_TASKS,
    Condition.STUCK_NO_FETCHER,
    Condition.STREAM_LOST,
    Condition.CONSUMER_LOST,
    Condition.TASKS_LOST,
}


@settings(max_examples=400)
@given(observations, st.none() | observations, layouts, configs)
def test_invariants(current, previous, layout, config):
    verdict = assess(current, layout, config, previous)
    snap_ = current.snapshot
    if verdict.act:
        assert verdict.confirmed
        assert verdict.condition in ACTIONABLE
        assert snap_.reachable
    if not snap_.reachable:
        assert verdict.condition is Condition.NATS_UNREACHABLE and not verdict.act
    if not snap_.stream_exists:
        assert verdict.condition is not Condition.FINISHED
    if config.confirmations >= 2 and previous is None:
        assert not verdict.act
    if verdict.condition is Condition.WAITING_FOR_WORKERS or verdict.condition is Condition.HEALTHY:
        assert not verdict.act and verdict.dead == 0
    if verdict.condition is Condition.STUCK_NO_FETCHER and verdict.act:
        assert config.stuck_detection  # stuck_action "warn": the sweep plan warns instead of failing
    if verdict.condition in (Condition.STREAM_LOST, Condition.CONSUMER_LOST, Condition.TASKS_LOST) and verdict.act:
        assert config.stream_lost_detection and current.counts.remaining > 0
    if verdict.condition is Condition.TASKS_LOST:  # only from the app's record, never more than can be missing
        assert current.counts.published and 0 < verdict.dead <= current.counts.remaining - snap_.outstanding
    assert verdict.dead >= 0 and verdict.reason


@given(observations, st.none() | observations, layouts, configs)
def test_verdict_survives_json_round_trip_of_observations(current, previous, layout, config):
    def again(o):
        return None if o is None else Observation.from_dict(json.loads(json.dumps(o.to_dict())))

    first = assess(current, layout, config, previous)
    second = assess(again(current), layout, config, again(previous))
    assert (first.condition, first.act, first.confirmed, first.dead) == (
        second.condition,
        second.act,
        second.confirmed,
        second.dead,
    )


@given(
    outstanding=st.integers(1, 1000),
    ack_pending=st.integers(1, 1000),
    idle=st.floats(0, 0.99),
    config=configs,
    layout=layouts,
)
def test_healthy_job_with_tasks_in_flight_and_recent_activity_never_acts(
    outstanding, ack_pending, idle, config, layout
):
    fresh = idle * (layout.ack_wait + config.stuck_grace)
    current = obs(
        expected=5000,
        processed=100,
        num_pending=outstanding,
        num_ack_pending=ack_pending,
        last_active=NOW - fresh,
    )
    previous = later(current, seconds=-config.sweep_interval)
    verdict = assess(current, layout, config, previous)
    assert verdict.condition is Condition.HEALTHY and not verdict.act


@given(wpi_ago=st.floats(0, 29), polls=st.integers(2, 6))
def test_in_progress_keeps_last_active_fresh_so_a_slow_task_is_not_stuck(wpi_ago, polls):
    # one slow task held for minutes, its worker sending +WPI more often than ack_wait (30 s)
    previous = None
    for i in range(polls):
        now = NOW + 60 * i
        current = obs(
            processed=199, num_ack_pending=1, taken_at=now, server_time=now, last_active=now - wpi_ago
        )
        verdict = assess(current, LAYOUT, TWO, previous)
        assert verdict.condition is Condition.HEALTHY and not verdict.act
        previous = current


@given(observations, layouts)
def test_confirmations_one_never_needs_previous(current, layout):
    verdict = assess(current, layout, ONE)
    assert verdict.confirmed


out_in_nats = snapshots.map(lambda s: dataclasses.replace(s, reachable=True, stream_exists=True, consumer_exists=True))


@settings(max_examples=300)
@given(st.builds(Observation, out_in_nats, counts_), st.none() | observations, layouts, configs)
def test_what_the_inline_check_skips_is_never_dead_or_lost(current, previous, layout, config):
    """cannot_be_dead_or_lost lets /tasks/ skip the counts: then no counts may make the look dead or lost."""
    if cannot_be_dead_or_lost(current.snapshot, current.counts.published):
        verdict = assess(current, layout, config, previous)
        assert verdict.condition is not Condition.DEAD_TASKS and verdict.condition not in LOST


def test_the_inline_check_skips_the_counts_only_with_tasks_out_and_none_missing():
    held = snap(num_ack_pending=4)
    assert cannot_be_dead_or_lost(held, published=200)
    assert cannot_be_dead_or_lost(held, published=None)
    assert not cannot_be_dead_or_lost(held, published=201)  # one task is missing from the stream
    assert not cannot_be_dead_or_lost(snap(), published=200)  # quiescent: maybe dead
    assert not cannot_be_dead_or_lost(snap(num_pending=3, consumer_exists=False), published=200)
