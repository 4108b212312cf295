"""no_duplicate_tasks, no_duplicate_results, no_stale_results, no_early_redelivery."""

from harness.history import Op
from tests.unit.test_checks_cases import (
    T0,
    call,
    job,
    post,
    queue,
    reserve,
    sample,
    sample_error,
    snapshot,
    start,
    subject,
    verdict_case,
)

# --- no_duplicate_tasks ------------------------------------------------------------------------------------------


def looks(*last_seqs: int) -> list:
    return [sample(T0 + 1 + i, queue(messages=seq, last_seq=seq, first_seq=1)) for i, seq in enumerate(last_seqs)]


@verdict_case("no_duplicate_tasks", True)
def test_the_stream_never_stored_more_tasks_than_images():
    return [*start(T0), *looks(2, 2)], snapshot(job(images=2))


@verdict_case("no_duplicate_tasks", True)
def test_a_gap_while_nats_did_not_answer_is_covered_by_the_next_look():
    return [*start(T0), *looks(2), sample_error(T0 + 1.5, unavailable=True), *looks(2)], snapshot(job(images=2))


@verdict_case("no_duplicate_tasks", False)
def test_a_second_publish_into_the_same_stream():
    return [*start(T0), *looks(2, 4)], snapshot(job(images=2))


@verdict_case("no_duplicate_tasks", False)
def test_acked_tasks_left_the_stream_but_last_seq_remembers_them():
    """Workqueue retention: acked messages are removed, so `messages` alone would miss the duplicates."""
    found = sample(T0 + 1, queue(messages=1, first_seq=4, last_seq=4))
    return [*start(T0), found], snapshot(job(images=2))


@verdict_case("no_duplicate_tasks", True)
def test_a_task_handed_out_is_a_look_at_a_stream_the_sampler_never_saw():
    """The stream was wiped before the sampler's next tick: seq 1 with 1 pending says it held 2."""
    return [*start(T0), *reserve(T0 + 0.1, [subject(1, pending=1)]), sample(T0 + 1, None)], snapshot(job(images=2))


@verdict_case("no_duplicate_tasks", False)
def test_a_task_handed_out_shows_a_stream_that_held_too_many():
    return [*start(T0), *reserve(T0 + 0.1, [subject(3, pending=1)])], snapshot(job(images=2))


@verdict_case("no_duplicate_tasks", False)
def test_a_violation_stands_beside_a_misread():
    return [*start(T0), *looks(4), sample_error(T0 + 2)], snapshot(job(images=2))


@verdict_case("no_duplicate_tasks", None)
def test_a_started_job_whose_stream_was_never_seen():
    return [*start(T0), sample(T0 + 1, None)], snapshot(job(images=2))


@verdict_case("no_duplicate_tasks", None)
def test_a_sampler_misread_leaves_the_peak_unknown():
    return [*start(T0), *looks(2), sample_error(T0 + 1.5, source="nats", unavailable=False)], snapshot(job(images=2))


@verdict_case("no_duplicate_tasks", None)
def test_no_duplicate_tasks_on_no_job():
    return [*start(T0), *looks(2)], snapshot()


# --- no_duplicate_results ----------------------------------------------------------------------------------------


@verdict_case("no_duplicate_results", True)
def test_one_result_per_image_and_attempt():
    return [], snapshot(job(images=3))


@verdict_case("no_duplicate_results", True)
def test_no_stored_result_is_a_proven_pass():
    return [], snapshot(job(status="FAILURE", images=3))


@verdict_case("no_duplicate_results", False)
def test_an_image_stored_twice_in_one_attempt():
    results = {"rows": 3, "distinct_images": 2, "duplicates": [[1, "img0", 2]], "subjects": []}
    return [], snapshot(job(images=2, results=results))


@verdict_case("no_duplicate_results", None)
def test_no_duplicate_results_on_no_job():
    return [], snapshot()


# --- no_stale_results --------------------------------------------------------------------------------------------


def stored(*subjects: str) -> dict:
    return {"rows": len(subjects), "distinct_images": len(subjects), "duplicates": [],
            "subjects": [[f"img{i}", s] for i, s in enumerate(subjects)]}


@verdict_case("no_stale_results", True)
def test_results_of_deliveries_handed_out_after_the_start():
    current = [subject(1, attempt=2), subject(2, attempt=2)]
    history = [*start(T0), *reserve(T0 + 1, [subject(1)]), *start(T0 + 2), *reserve(T0 + 3, current)]
    return history, snapshot(job(images=2, attempt=2, results=stored(*current)))


@verdict_case("no_stale_results", True)
def test_one_start_and_nothing_handed_out_before_it_is_a_proven_pass():
    return [*start(T0), *reserve(T0 + 1, [subject(1), subject(2)])], snapshot(job(images=2))


@verdict_case("no_stale_results", False)
def test_a_result_of_a_delivery_from_before_the_restart_is_stored():
    stale = subject(1)
    history = [*start(T0), *reserve(T0 + 1, [stale]), *start(T0 + 2), *reserve(T0 + 3, [subject(2, attempt=2)])]
    return history, snapshot(job(images=2, attempt=2, results=stored(stale, subject(2, attempt=2))))


@verdict_case("no_stale_results", None)
def test_a_started_job_without_a_2xx_start_in_the_history():
    """The Start timed out (info): when the attempt began cannot be told."""
    history = [op for op in start(T0) if op.type == "invoke"]
    return history, snapshot(job(images=2))


@verdict_case("no_stale_results", None)
def test_no_stale_results_on_no_job():
    return start(T0), snapshot()


def test_a_refused_start_begins_no_attempt():
    from harness.checks.duplicates import no_stale_results

    stale = subject(1)
    history = [*start(T0), *reserve(T0 + 1, [stale]), *start(T0 + 2, status=409)]
    found = no_stale_results(sorted(history, key=lambda op: op.time), snapshot(job(images=1, results=stored(stale))))
    assert found.ok is True


# --- no_early_redelivery -----------------------------------------------------------------------------------------


def _with_ack_wait(found: dict, ack_wait: float = 1.0) -> dict:
    return {**found, "settings": {**found["settings"], "CHAOS_ACK_WAIT": str(ack_wait)}}


@verdict_case("no_early_redelivery", True)
def test_a_task_handed_out_again_only_an_ack_wait_after_its_result_was_accepted():
    history = [*reserve(T0, [subject(1)]), *post(T0 + 0.8, [subject(1)]),
               *reserve(T0 + 1.9, [subject(1, delivered=2)], process="worker-1")]
    return history, _with_ack_wait(snapshot(job(images=1)))


@verdict_case("no_early_redelivery", False)
def test_a_task_handed_out_again_right_after_its_result_was_accepted():
    history = [*reserve(T0, [subject(1)]), *post(T0 + 0.8, [subject(1)]),
               *reserve(T0 + 1.0, [subject(1, delivered=2)], process="worker-1")]
    return history, _with_ack_wait(snapshot(job(images=1)))


@verdict_case("no_early_redelivery", None)
def test_a_result_posted_after_its_tasks_ack_wait_ran_out_is_not_judged():
    """The web app was restarting: the POST got through 1.5 ack_waits after the hand-out, when NATS had taken
    the task back already; its redelivery right after is NATS doing its job (soak seed 550775248)."""
    history = [*reserve(T0, [subject(1)]), *post(T0 + 1.6, [subject(1)]),
               *reserve(T0 + 1.9, [subject(1, delivered=2)], process="worker-1")]
    return history, _with_ack_wait(snapshot(job(images=1)))


def heartbeat(at: float, subjects: list[str], process: str = "worker-0") -> list:
    return call(process, "heartbeat", at, {"job": 1, "reply_subjects": subjects}, {"job": 1, "status": 200})


@verdict_case("no_early_redelivery", False)
def test_heartbeats_restart_the_ack_wait_so_a_late_post_is_still_judged():
    """s07: a worker holds its task for 4 ack_waits with in_progress heartbeats; its POST is not late."""
    beats = [op for i in range(1, 8) for op in heartbeat(T0 + 0.5 * i, [subject(1)])]
    history = [*reserve(T0, [subject(1)]), *beats, *post(T0 + 4.0, [subject(1)]),
               *reserve(T0 + 4.2, [subject(1, delivered=2)], process="worker-1")]
    return history, _with_ack_wait(snapshot(job(images=1)))


@verdict_case("no_early_redelivery", None)
def test_no_result_was_accepted():
    refused = post(T0 + 0.8, [subject(1)], refused={subject(1): "rejected_stale"})
    return [*reserve(T0, [subject(1)]), *refused], _with_ack_wait(snapshot(job(images=1)))


# --- no_replayed_tasks ------------------------------------------------------------------------------------------


@verdict_case("no_replayed_tasks", True)
def test_a_task_redelivered_with_its_delivery_count_raised():
    history = [*reserve(T0, [subject(1)]), *reserve(T0 + 2, [subject(1, delivered=2)], process="worker-1")]
    return history, snapshot(job(images=1))


@verdict_case("no_replayed_tasks", False)
def test_a_task_handed_out_afresh_twice_by_a_new_consumer():
    history = [*start(T0 - 1), *reserve(T0, [subject(1)]), *post(T0 + 0.5, [subject(1)]),
               *reserve(T0 + 2, [subject(1)], process="worker-1")]
    return history, snapshot(job(images=1))


@verdict_case("no_replayed_tasks", True)
def test_a_new_attempt_numbers_its_messages_from_one_again():
    history = [*start(T0 - 1), *reserve(T0, [subject(1)]), *start(T0 + 1), *reserve(T0 + 2, [subject(1, attempt=2)])]
    return history, snapshot(job(images=1, attempt=2))


@verdict_case("no_replayed_tasks", None)
def test_no_task_was_handed_out():
    return [*start(T0)], snapshot(job(images=1))


def _nats_crash(at: float, fault: str = "nats-kill", **args) -> list[Op]:
    return [Op(at, "nemesis", "inject", "invoke", {"fault": fault, **args})]


@verdict_case("no_replayed_tasks", True)
def test_a_task_handed_out_afresh_after_nats_crashed_and_lost_its_consumer_state():
    history = [*start(T0 - 1), *reserve(T0, [subject(1)]), *post(T0 + 0.5, [subject(1)]), *_nats_crash(T0 + 1),
               *reserve(T0 + 2, [subject(1)], process="worker-1")]
    return history, snapshot(job(images=1))


@verdict_case("no_replayed_tasks", False)
def test_a_crash_before_both_hand_outs_or_a_clean_restart_excuses_no_replay():
    history = [*_nats_crash(T0 - 0.5), *_nats_crash(T0 + 1, "nats-restart", wipe=False), *start(T0 - 1),
               *reserve(T0, [subject(1)]), *post(T0 + 0.5, [subject(1)]), *reserve(T0 + 2, [subject(1)], process="worker-1")]
    return history, snapshot(job(images=1))


@verdict_case("no_replayed_tasks", True)
def test_a_crash_while_the_first_hand_out_was_answered_excuses_its_replay():
    """The server handed the batch out and died before it synced that: the crash lands between the reserve's
    ask (T0) and its answer (T0 + 0.1)."""
    history = [*start(T0 - 1), *reserve(T0, [subject(1)]), *_nats_crash(T0 + 0.05),
               *reserve(T0 + 2, [subject(1)], process="worker-1")]
    return history, snapshot(job(images=1))


@verdict_case("no_replayed_tasks", True)
def test_the_old_attempts_consumer_hands_out_until_the_new_start_takes_effect():
    """A Start is in flight (its window opens at its ask) while attempt 1's consumer still hands out seq 1;
    attempt 2's consumer then hands out its own seq 1: two consumers, one first delivery each."""
    history = [*start(T0 - 1), *start(T0), *reserve(T0 + 0.05, [subject(1)]),
               *reserve(T0 + 2, [subject(1, attempt=2)], process="worker-1")]
    return history, snapshot(job(images=1, attempt=2))
