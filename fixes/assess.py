"""Decide from one or two observations of a job's queue whether its tasks died. Pure: no I/O, no clock.

Every rule is written against measured JetStream behaviour:
* Exhausted tasks (max_deliver used up) leave the consumer quiescent: num_pending == 0, num_ack_pending == 0.
  ack_floor is no dead-letter count (2.15 never moves it over them, 2.10 does): only the app's counts say how many died.
* With nobody fetching the server does nothing: tasks sit in num_pending / num_ack_pending forever and
  delivered.last_active (bumped by every delivery and +WPI, not by acks or empty fetches) stops moving.
* After a server restart with an ephemeral store the stream is simply gone (and server_id changes); that is
  task loss, never completion.
* A stream that exists can still have lost tasks (a crash with lazy fsync, a purge, max_age): only the app's
  record of what the attempt published tells that apart from "nothing published yet" or "exhausted".
"""

from __future__ import annotations

import dataclasses

from fixes.config import FixesConfig
from fixes.layout import QueueLayout
from fixes.model import LOST, Assessment, Condition, JobCounts, Observation, QueueSnapshot

MAX_LISTED_IMAGES = 20


def assess(current: Observation, layout: QueueLayout, config: FixesConfig, previous: Observation | None = None,
           *, watch_since: float | None = None, after_outage: bool = False) -> Assessment:
    """Classify `current`; confirm against `previous` (the look before) when config.confirmations > 1.

    The watch clock: workers cannot fetch while NATS is away, so after an outage (`after_outage`) or a
    server restart (server_id changed) idleness is counted from now at the earliest, never from before.
    Pass the returned `watch_since` back in with the next look.
    """
    snap = current.snapshot
    if snap.reachable and (after_outage or (previous is not None and previous.snapshot.server_id != snap.server_id)):
        watch_since = snap.now
    current = watched(current, watch_since)
    condition, dead, reason = _classify(current, layout, config, previous)
    evidence = _evidence(current, layout, previous)
    confirmed = config.confirmations <= 1 or (previous is not None and _steady(condition, current, previous)
                                               and _classify(previous, layout, config, None)[0] == condition)
    if condition in LOST:
        actionable = config.stream_lost_detection and dead > 0
    elif condition is Condition.STUCK_NO_FETCHER:
        actionable = config.stuck_detection  # stuck_action says whether acting means failing or warning
    else:
        actionable = condition is Condition.DEAD_TASKS  # gated by the caller (inline reaper or sweep switch)
    return Assessment(condition, actionable and confirmed, confirmed, dead, reason, evidence, watch_since)


def cannot_be_dead_or_lost(snap: QueueSnapshot, published: int | None) -> bool:
    """No counts of the app can make this look dead or lost: the stream and the consumer are there, tasks are
    pending or in flight (dead tasks leave the consumer quiescent), and the stream still holds as many tasks as
    the attempt published (so none can be missing from it). The inline check then skips reading the counts."""
    return (snap.reachable and snap.stream_exists and snap.consumer_exists and snap.outstanding > 0
            and (not published or snap.messages >= published))


def watched(observation: Observation, since: float | None) -> Observation:
    """The observation with delivery activity counted from `since` at the earliest (what the next look
    must be compared with)."""
    last_active = observation.snapshot.last_active
    if since is None or last_active is None or last_active >= since:
        return observation
    return dataclasses.replace(observation, snapshot=dataclasses.replace(observation.snapshot, last_active=since))


def _classify(obs: Observation, layout: QueueLayout, config: FixesConfig,
              previous: Observation | None) -> tuple[Condition, int, str]:
    snap, counts = obs.snapshot, obs.counts
    if not snap.reachable:  # a few seconds' outage must not fail a healthy job: report it, never act on it
        return Condition.NATS_UNREACHABLE, 0, "NATS is not answering"
    if not snap.stream_exists or not snap.consumer_exists:  # "0 pending" of a missing stream is no completion
        what = "stream" if not snap.stream_exists else "consumer"
        lost = max(counts.remaining - counts.countable_queued, 0)
        name = layout.stream(snap.job_id) if what == "stream" else snap.consumer or f"of job {snap.job_id}"
        tail = f"{lost} of {counts.expected} tasks have no result" if lost else "every task has a result"
        condition = Condition.STREAM_LOST if what == "stream" else Condition.CONSUMER_LOST
        gone = f"; its progress state is gone too: {counts.results_queued} queued results cannot be counted" \
            if counts.state_lost and counts.results_queued else ""
        return condition, lost, f"NATS {what} {name} is gone ({_loss_cause(snap, counts, previous, what)}); {tail}{gone}"
    if counts.remaining <= 0:
        return Condition.FINISHED, 0, f"all {counts.expected} tasks have a result"
    if counts.countable_queued > 0:
        return Condition.HEALTHY, 0, f"{counts.results_queued} results accepted and waiting to be stored"
    if config.stream_lost_detection and (lost := _lost(snap, counts, layout)):
        return Condition.TASKS_LOST, lost, _lost_reason(lost, snap, counts, layout, previous)
    if snap.quiescent:
        if snap.last_seq == 0 and snap.delivered_stream_seq == 0:
            return Condition.HEALTHY, 0, "no task published yet"
        return Condition.DEAD_TASKS, counts.remaining, _dead_reason(snap, counts, layout)
    if snap.num_waiting > 0:
        return Condition.HEALTHY, 0, f"{snap.outstanding} tasks outstanding, {snap.num_waiting} fetch(es) waiting"
    if snap.delivered_stream_seq == 0:
        return Condition.WAITING_FOR_WORKERS, 0, f"{snap.outstanding} tasks waiting, no worker has fetched yet"
    idle = _idle(snap)
    progressed = previous is not None and counts.processed > previous.counts.processed
    if idle is not None and idle > layout.ack_wait + config.stuck_grace and not progressed \
            and _held_past_deadline(snap, idle, layout, config, previous):
        return Condition.STUCK_NO_FETCHER, 0, (f"{snap.outstanding} tasks waiting, no worker has fetched for "
                                               f"{_secs(idle)} (ack_wait={_secs(layout.ack_wait)})")
    return Condition.HEALTHY, 0, f"{snap.outstanding} tasks outstanding"


def _held_past_deadline(snap: QueueSnapshot, idle: float, layout: QueueLayout, config: FixesConfig,
                        previous: Observation | None) -> bool:
    """NATS's own evidence that nobody works on the job, beyond idle time: nothing is held by a worker, or
    the held tasks were redelivered since the last look, or they are held past the deadline NATS gives a
    task over all its deliveries (ack_wait x max_deliver). A live worker may hold a batch longer than one
    ack_wait, and with no other poller NATS redelivers nothing, so idleness alone cannot tell it from a
    dead one."""
    if snap.num_ack_pending == 0:
        return True
    if previous is not None and snap.num_redelivered > previous.snapshot.num_redelivered:
        return True
    return idle > layout.ack_wait * layout.max_deliver + config.stuck_grace


def _steady(condition: Condition, current: Observation, previous: Observation) -> bool:
    """For DEAD/STUCK the app's progress (and for DEAD the stream) must not have moved between the looks."""
    same_progress = current.counts.processed == previous.counts.processed
    if condition is Condition.DEAD_TASKS:
        return same_progress and current.snapshot.last_seq == previous.snapshot.last_seq
    if condition is Condition.TASKS_LOST:  # the loss is in the stream: workers may go on with what it still holds
        return current.snapshot.last_seq == previous.snapshot.last_seq
    return same_progress or condition is not Condition.STUCK_NO_FETCHER


def _secs(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 or float(value).is_integer() else f"{value:.1f}s"


def _idle(snap: QueueSnapshot) -> float | None:
    return None if snap.last_active is None else snap.now - snap.last_active


def _lost(snap: QueueSnapshot, counts: JobCounts, layout: QueueLayout) -> int:
    """How many unprocessed images' tasks the stream can no longer hand out (0: none provably).

    Limits retention keeps every task the attempt published (1..published); workqueue drops the acked ones,
    which are at most the processed ones. Whatever is missing beyond that was lost; it counts against the
    unprocessed images that nothing pending or in flight can still serve (a result read after the snapshot
    only lowers that bound).
    """
    if not counts.published or counts.remaining <= 0:
        return 0
    held_at_least = counts.published - (counts.processed if layout.retention == "workqueue" else 0)
    missing = held_at_least - snap.messages
    return max(0, min(missing, counts.remaining - snap.outstanding))


def _lost_reason(lost: int, snap: QueueSnapshot, counts: JobCounts, layout: QueueLayout,
                 previous: Observation | None) -> str:
    return (f"{lost} of {counts.expected} tasks can never be handed out: they are gone from NATS stream "
            f"{layout.stream(snap.job_id)} ({_lost_cause(snap, counts, layout, previous)})")


def _lost_cause(snap: QueueSnapshot, counts: JobCounts, layout: QueueLayout, previous: Observation | None) -> str:
    """What the stream's state says happened to the tasks the attempt published."""
    published, held = counts.published, f"it holds {snap.messages} (seq {snap.first_seq}..{snap.last_seq})"
    age = snap.taken_at - counts.published_at if counts.published_at is not None else None
    if age is not None and age > layout.max_age:
        return f"aged out: published {_secs(age)} ago, the stream's max_age is {_secs(layout.max_age)}; {held}"
    if snap.last_seq < published:
        what = "the stream is empty" if snap.last_seq == 0 else f"the stream ends at seq {snap.last_seq}"
        restart = _restart(snap, counts.published_server, previous)
        return f"lost writes: {what}, {published} were published" + (f"; {restart}" if restart else "")
    younger = f"younger than max_age {_secs(layout.max_age)}" if age is not None else "max_age not known to be reached"
    return f"purged: {published} were published, {held}, {younger}"


def _restart(snap: QueueSnapshot, at_publish: str | None, previous: Observation | None) -> str:
    """"server restarted: id A → B" when the server id changed since the publish (or the look before)."""
    for before in (at_publish, previous.snapshot.server_id if previous is not None else None):
        if before and snap.server_id and before != snap.server_id:
            return f"server restarted: id {before} → {snap.server_id}"
    return ""


def _loss_cause(snap: QueueSnapshot, counts: JobCounts, previous: Observation | None, what: str) -> str:
    return _restart(snap, counts.published_server, previous) or f"{what} deleted"


def _dead_reason(snap: QueueSnapshot, counts: JobCounts, layout: QueueLayout) -> str:
    text = (f"{counts.remaining} of {counts.expected} tasks exhausted max_deliver={layout.max_deliver} "
            f"(ack_wait={_secs(layout.ack_wait)})")
    if snap.last_seq < counts.expected:  # sequence numbers count every task ever stored in this stream
        text += f"; only {snap.last_seq} of {counts.expected} tasks were ever published"
    if ids := counts.unprocessed_image_ids:
        more = len(ids) - MAX_LISTED_IMAGES
        text += f"; images: {', '.join(ids[:MAX_LISTED_IMAGES])}" + (f", … (+{more} more)" if more > 0 else "")
    return text


def _evidence(obs: Observation, layout: QueueLayout, previous: Observation | None) -> dict:
    snap, counts = obs.snapshot, obs.counts
    evidence = {**snap.to_dict(), **counts.to_dict(), "remaining": counts.remaining, "retention": layout.retention,
                "idle": _idle(snap)}
    if layout.retention == "workqueue" and snap.stream_exists:
        # only a workqueue stream drops acked tasks, so only there is what is left = pending + in flight + dead
        evidence["stream_dead"] = snap.messages - snap.num_pending - snap.num_ack_pending
    if previous is not None:
        evidence.update(previous_taken_at=previous.snapshot.taken_at, previous_processed=previous.counts.processed,
                        previous_server_id=previous.snapshot.server_id)
    return evidence
