"""terminal_within_bound, failure_has_reason, lost_tasks_named, not_failed_with_results_in_hand, services_alive."""

from harness.history import Op
from tests.unit.test_checks_cases import (
    T0,
    call,
    job,
    post,
    reserve,
    settle,
    snapshot,
    start,
    subject,
    verdict_case,
)

HEALED = T0 + 10  # the runner's settle mark: every fault healed
REASON = [{"level": "ERROR", "message": "2 of 2 tasks exhausted max_deliver"}]

# --- terminal_within_bound --------------------------------------------------------------------------------------


@verdict_case("terminal_within_bound", True)
def test_a_job_that_ended_within_the_bound():
    return [*start(T0), *settle(HEALED, bound=10)], snapshot(job(finished_at=HEALED + 9.5))


@verdict_case("terminal_within_bound", True)
def test_a_job_that_ended_before_the_faults_were_healed():
    return [*start(T0), *settle(HEALED)], snapshot(job(status="REVOKED", finished_at=T0 + 2))


@verdict_case("terminal_within_bound", False)
def test_a_job_still_running_at_the_end():
    return [*start(T0), *settle(HEALED)], snapshot(job(status="STARTED"))


@verdict_case("terminal_within_bound", False)
def test_a_job_that_ended_after_the_bound_is_late():
    """The database's finished_at shows it even though the runner stopped sampling at the bound."""
    return [*start(T0), *settle(HEALED, bound=10)], snapshot(job(status="FAILURE", finished_at=HEALED + 12))


@verdict_case("terminal_within_bound", None)
def test_a_terminal_job_without_finished_at():
    return [*start(T0), *settle(HEALED)], snapshot(job(finished_at=None))


@verdict_case("terminal_within_bound", None)
def test_no_settle_mark_leaves_no_bound_to_judge_by():
    return start(T0), snapshot(job())


@verdict_case("terminal_within_bound", None)
def test_terminal_within_bound_on_no_job():
    return [*start(T0), *settle(HEALED)], snapshot()


# --- failure_has_reason -------------------------------------------------------------------------------------------


@verdict_case("failure_has_reason", True)
def test_a_failure_that_says_why():
    return [], snapshot(job(status="FAILURE", logs=REASON))


@verdict_case("failure_has_reason", True)
def test_no_failed_job_is_a_proven_pass():
    return [], snapshot(job(), job(id=2, status="REVOKED"))


@verdict_case("failure_has_reason", False)
def test_a_failure_without_an_error_line():
    return [], snapshot(job(status="FAILURE", logs=[{"level": "INFO", "message": "Published 2 tasks"}]))


@verdict_case("failure_has_reason", None)
def test_failure_has_reason_on_no_job():
    return [], snapshot()


# --- lost_tasks_named --------------------------------------------------------------------------------------------

LOST = [{"level": "ERROR", "message": "3 of 5 tasks can never be handed out: they are gone from NATS stream job_1 "
                                      "(purged: 5 were published, it holds 0 (seq 6..5))"}]


def purged(at: float = T0 + 1, job_id: int | None = 1) -> list[Op]:
    return call("nemesis", "inject", at, {"fault": "stream-purge", **({"job": job_id} if job_id else {})})


@verdict_case("lost_tasks_named", True)
def test_a_job_failed_naming_its_lost_tasks():
    return [*start(T0), *purged()], snapshot(job(status="FAILURE", logs=LOST))


@verdict_case("lost_tasks_named", True)
def test_a_job_failed_naming_its_lost_tasks_then_revoked_by_the_watchdog():
    return [*start(T0), *purged()], snapshot(job(status="REVOKED", logs=LOST))


@verdict_case("lost_tasks_named", False)
def test_a_job_whose_lost_tasks_were_called_exhausted():
    return [*start(T0), *purged()], snapshot(job(status="FAILURE", logs=REASON))


@verdict_case("lost_tasks_named", False)
def test_a_crash_that_lost_tasks_called_a_deleted_stream():
    crash = call("nemesis", "inject", T0 + 1, {"fault": "nats-lose-writes"})
    gone = [{"level": "ERROR", "message": "NATS stream job_1 is gone (stream deleted); 3 of 5 tasks have no result"}]
    return [*start(T0), *crash], snapshot(job(status="FAILURE", logs=gone))


@verdict_case("lost_tasks_named", False)
def test_a_job_left_running_after_a_crash_lost_its_tasks():
    crash = call("nemesis", "inject", T0 + 1, {"fault": "nats-lose-writes"})
    return [*start(T0), *crash], snapshot(job(status="STARTED"), job(id=2, status="FAILURE", logs=LOST))


@verdict_case("lost_tasks_named", None)
def test_a_job_that_had_ended_before_the_crash_lost_nothing_it_needed():
    crash = call("nemesis", "inject", T0 + 6, {"fault": "nats-lose-writes", "job": 1, "tail": 4})
    missing = [{"level": "ERROR", "message": "Job state missing in Redis (flushed or expired); cannot count progress"}]
    return [*start(T0), *crash], snapshot(job(status="FAILURE", logs=missing, finished_at=T0 + 5))


@verdict_case("lost_tasks_named", None)
def test_lost_tasks_named_without_a_job_hit():
    return [*start(T0), *purged(job_id=7)], snapshot(job(status="FAILURE", logs=REASON))


# --- unanswered_jobs_failed --------------------------------------------------------------------------------------

UNANSWERED = [{"level": "ERROR", "message": "no answer about job 1's queue for 10s (unavailable_limit=10s): JetStream "
                                            "is unavailable (the cluster lost quorum, or its store is gone)"}]
LIMITED = {"CHAOS_FIXES": "on", "CHAOS_SWEEP_INTERVAL": "1.0", "CHAOS_UNAVAILABLE_LIMIT": "10"}  # window: 32 s


def quorum_lost(at: float = T0 + 1, lasting: float = 35.0) -> list[Op]:
    return [*call("nemesis", "inject", at, {"fault": "nats-lose-quorum", "job": 1}),
            Op(at + lasting, "nemesis", "heal", "invoke", {"fault": "nats-lose-quorum"})]


def limited(*jobs: dict) -> dict:
    return {**snapshot(*jobs), "settings": LIMITED}


@verdict_case("unanswered_jobs_failed", True)
def test_a_job_failed_naming_the_lost_quorum_before_it_came_back():
    return [*start(T0), *quorum_lost()], limited(job(status="FAILURE", finished_at=T0 + 20, logs=UNANSWERED))


@verdict_case("unanswered_jobs_failed", False)
def test_a_job_still_running_through_the_loss_that_succeeded_after_it():
    return [*start(T0), *quorum_lost()], limited(job(status="SUCCESS", finished_at=T0 + 40))


@verdict_case("unanswered_jobs_failed", False)
def test_a_job_failed_during_the_loss_without_naming_it():
    return [*start(T0), *quorum_lost()], limited(job(status="FAILURE", finished_at=T0 + 20, logs=REASON))


@verdict_case("unanswered_jobs_failed", True)
def test_a_job_failed_once_the_limit_passed_ending_the_loss_early():
    return [*start(T0), *quorum_lost(lasting=22)], limited(job(status="FAILURE", finished_at=T0 + 20, logs=UNANSWERED))


@verdict_case("unanswered_jobs_failed", False)
def test_a_job_failed_for_no_answer_before_the_limit_passed():
    return [*start(T0), *quorum_lost(lasting=22)], limited(job(status="FAILURE", finished_at=T0 + 5, logs=UNANSWERED))


@verdict_case("unanswered_jobs_failed", True)
def test_a_job_that_rode_out_a_loss_shorter_than_the_limit():
    return [*start(T0), *quorum_lost(lasting=20)], limited(job(status="SUCCESS", finished_at=T0 + 25))


@verdict_case("unanswered_jobs_failed", True)
def test_without_a_limit_set_the_default_hour_applies():
    return [*start(T0), *quorum_lost()], snapshot(job(status="SUCCESS", finished_at=T0 + 40))


@verdict_case("unanswered_jobs_failed", None)
def test_a_job_started_after_the_quorum_came_back_is_not_judged():
    return [*quorum_lost(), *start(T0 + 40)], limited(job(status="SUCCESS", finished_at=T0 + 45))


# --- not_failed_with_results_in_hand ---------------------------------------------------------------------------


def handed_and_posted(at: float = T0 + 1) -> list[Op]:
    subjects = [subject(1), subject(2)]
    return [*start(T0), *reserve(at, subjects), *post(at + 0.5, subjects)]


def failed(finished_at: float = T0 + 9):
    return snapshot(job(status="FAILURE", logs=REASON, finished_at=finished_at))


@verdict_case("not_failed_with_results_in_hand", False)
def test_failing_a_job_whose_every_result_was_accepted():
    return handed_and_posted(), failed()


@verdict_case("not_failed_with_results_in_hand", True)
def test_a_failed_job_with_a_result_missing():
    subjects = [subject(1), subject(2)]
    return [*start(T0), *reserve(T0 + 1, subjects), *post(T0 + 1.5, subjects[:1])], failed()


@verdict_case("not_failed_with_results_in_hand", True)
def test_results_posted_after_the_failure_were_not_in_hand():
    return handed_and_posted(at=T0 + 10), failed(finished_at=T0 + 9)


@verdict_case("not_failed_with_results_in_hand", True)
def test_a_refused_result_is_not_in_hand():
    subjects = [subject(1), subject(2)]
    refused = {subjects[1]: "stale"}
    return [*start(T0), *reserve(T0 + 1, subjects), *post(T0 + 1.5, subjects, refused=refused)], failed()


def revoked(finished_at: float = T0 + 9):
    return snapshot(job(status="REVOKED", finished_at=finished_at))


@verdict_case("not_failed_with_results_in_hand", False)
def test_the_host_revoking_by_itself_a_job_whose_every_result_was_accepted():
    return handed_and_posted(), revoked()


@verdict_case("not_failed_with_results_in_hand", True)
def test_a_job_someone_cancelled_is_not_judged():
    return [*handed_and_posted(), *call("client", "cancel", T0 + 3, {"job": 1}, {"status": 200})], revoked()


@verdict_case("not_failed_with_results_in_hand", True)
def test_no_failed_job_is_nothing_failed_with_results_in_hand():
    return handed_and_posted(), snapshot(job())


@verdict_case("not_failed_with_results_in_hand", None)
def test_not_failed_with_results_in_hand_on_no_job():
    return handed_and_posted(), snapshot()


def test_a_reply_subject_that_does_not_parse_names_no_task():
    from harness.checks.liveness import not_failed_with_results_in_hand

    subjects = [subject(1), "$JS.ACK.job_1.not-a-subject"]
    history = [*start(T0), *reserve(T0 + 1, subjects), *post(T0 + 1.5, subjects)]
    found = not_failed_with_results_in_hand(sorted(history, key=lambda op: op.time), failed())
    assert found.ok is True


# --- services_alive -----------------------------------------------------------------------------------------------


@verdict_case("services_alive", True)
def test_every_service_runs_at_the_end():
    return [], snapshot(job(), services={"nats": True, "redis": True, "celery-worker": True})


@verdict_case("services_alive", False)
def test_a_service_that_died_by_itself():
    return [], snapshot(job(), services={"nats": True, "celery-worker": False})


@verdict_case("services_alive", None)
def test_no_process_information():
    found = snapshot(job())
    del found["services"]
    return [], found


@verdict_case("lost_tasks_named", False)
def test_a_job_still_started_after_the_crash_is_judged_though_it_started_before_it():
    crash = call("nemesis", "inject", T0 + 6, {"fault": "nats-lose-writes", "job": 1, "tail": 4})
    started = call("sampler", "status", T0 + 1, {"job": 1, "status": "STARTED", "attempt": 1})
    return [*start(T0), *started, *crash], snapshot(job(status="STARTED"))
