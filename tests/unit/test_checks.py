"""Checkers are pure functions of (timeline, snapshot): judged here on hand-written timelines."""

from harness.checks import judge
from harness.checks.liveness import not_failed_with_results_in_hand
from harness.history import Op

CREATED = 1_000.0  # when the job's stream was created (unix seconds)


def reply_subject(seq: int) -> str:
    created_ns = int(CREATED * 1e9)
    return f"$JS.ACK.job_1.job-1-consumer.1.{seq}.{seq}.{created_ns + seq}.0"


def failed_job(images: int = 2) -> dict:
    return {"id": 1, "status": "FAILURE", "images": images, "attempt": 1,
            "progress": {"processed": 0}, "logs": [{"level": "ERROR", "message": "2 of 2 tasks exhausted"}]}


def timeline(*extra: Op) -> list[Op]:
    subjects = [reply_subject(seq) for seq in (1, 2)]
    ops = [
        Op(CREATED - 1, "client", "start", "invoke", {"job": 1}),
        Op(CREATED - 0.5, "client", "start", "ok", {"job": 1, "status": 200}),
        Op(CREATED + 0.5, "worker-0", "reserve", "ok", {"job": 1, "reply_subjects": subjects}),
        Op(CREATED + 1, "worker-0", "post", "invoke", {"job": 1, "reply_subjects": subjects}),
        Op(CREATED + 1.1, "worker-0", "post", "ok", {"job": 1, "status": 200, "refused": {}}),
        Op(CREATED + 9, "sampler", "status", "ok", {"job": 1, "status": "FAILURE", "attempt": 1}),
        *extra,
    ]
    return sorted(ops, key=lambda op: op.time)


def test_failing_a_job_whose_every_result_was_accepted_is_a_violation():
    found = not_failed_with_results_in_hand(timeline(), {"jobs": {1: failed_job()}})
    assert found.ok is False
    assert found.samples[0]["tasks_with_accepted_results"] == 2


def test_a_redis_wipe_before_the_failure_took_the_accepted_results_with_it():
    wipe = Op(CREATED + 5, "nemesis", "inject", "invoke", {"fault": "redis-restart"})
    found = not_failed_with_results_in_hand(timeline(wipe), {"jobs": {1: failed_job()}})
    assert found.ok is True
    assert found.counts["redis_wiped"] == 1


def test_a_redis_wipe_after_the_failure_excuses_nothing():
    wipe = Op(CREATED + 20, "nemesis", "inject", "invoke", {"fault": "redis-flush"})
    found = not_failed_with_results_in_hand(timeline(wipe), {"jobs": {1: failed_job()}})
    assert found.ok is False


def test_results_for_deliveries_of_an_earlier_attempt_are_not_in_hand():
    restart = [Op(CREATED + 0.7, "client", "start", "invoke", {"job": 1}),
               Op(CREATED + 0.8, "client", "start", "ok", {"job": 1, "status": 200})]
    found = not_failed_with_results_in_hand(timeline(*restart), {"jobs": {1: failed_job()}})
    assert found.ok is True  # both subjects were handed out before the second Start


def test_a_checker_that_crashes_answers_unknown():
    (found,) = judge([], {"jobs": {1: {"id": 1}}}, names=["failure_has_reason"])
    assert found.ok is None and found.counts == {"crashed": 1}
