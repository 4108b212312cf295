"""The load run's end-of-run invariants (harness/load/invariants.py), judged on the dicts a target's records read."""

import pytest

from harness.load.invariants import Judgeable, classify_dead_images, job_rows, judge
from harness.load.run import parse_args, stack_settings
from harness.targets import TargetSpec


def details(job_id=1, status="SUCCESS", images=10, processed=10, failed=0, distinct=10, logs=(), duplicates=()):
    return {job_id: {"id": job_id, "status": status, "attempt": 1, "images": images, "finished_at": None,
                     "progress": {"total_images": images, "processed": processed, "remaining": images - processed,
                                  "failed": failed},
                     "logs": [{"level": level, "message": message} for level, message in logs],
                     "results": {"rows": distinct, "distinct_images": distinct, "duplicates": list(duplicates),
                                 "subjects": []}}}


def violations(job, judgeable=None, streams=None):
    jobs, duplicates = job_rows(job)
    return judge(jobs, duplicates, list(job), streams or {}, judgeable or Judgeable()).violations


SANDBOX, ANTENNA = Judgeable.of("sandbox"), Judgeable.of("antenna")


def test_a_clean_job_passes_on_both():
    for judgeable in (SANDBOX, ANTENNA):
        assert violations(details(), judgeable, {"job_1": 10}) == []


def test_rows_from_records():
    jobs, duplicates = job_rows(details(status="FAILURE", logs=[("INFO", "x"), ("ERROR", "why")],
                                        duplicates=[[1, 7, 2]]))
    assert (jobs[0].error_logs, jobs[0].reasons, jobs[0].last_logs) == (1, ["why"], ["INFO x", "ERROR why"])
    assert duplicates == [(1, 1, 7, 2)]


@pytest.mark.parametrize(("job", "expected"), [
    (details(status="STARTED", processed=5, distinct=5), "is STARTED, not terminal"),
    (details(status="FAILURE", processed=5, distinct=5), "FAILURE without an ERROR log line"),
    (details(processed=9, distinct=9), "SUCCESS with 9 of 10 processed"),
    (details(duplicates=[[1, 3, 2], [1, 4, 3]]), "2 images with more than one stored result"),
])
def test_each_invariant_names_its_job(job, expected):
    for judgeable in (SANDBOX, ANTENNA):
        assert any(expected in v for v in violations(job, judgeable)), violations(job, judgeable)


def test_a_stream_holding_more_than_the_images_is_a_double_publish():
    assert violations(details(), SANDBOX, {"job_1": 20}) == ["job 1: stream held 20 messages for 10 images"]


def test_sandbox_counts_error_results_as_stored():
    """An error result is a row on the sandbox: processed must equal the images with a result."""
    assert violations(details(failed=2, distinct=10), SANDBOX) == []
    assert violations(details(failed=2, distinct=8), SANDBOX) == ["job 1: progress says 10 processed, 8 images "
                                                                   "have a result"]


@pytest.mark.parametrize(("distinct", "ok"), [(8, True), (10, True), (7, False), (11, False)])
def test_antenna_stores_nothing_for_an_error_result(distinct, ok):
    """Antenna: processed - failed <= images with a result <= processed."""
    assert (violations(details(failed=2, distinct=distinct), ANTENNA) == []) is ok


@pytest.mark.parametrize(("reason", "judgeable"), [
    ("Job state missing in Redis (flushed or expired); cannot count progress", SANDBOX),
    ("Job 1 marked as FAILURE: Job state keys not found in Redis (likely cleaned up concurrently)", ANTENNA)])
def test_a_job_whose_progress_state_was_wiped_may_keep_results_it_could_not_count(reason, judgeable):
    """The load run's redis-restart: the batch that finds no progress state is stored (nothing lost), not counted,
    and the job fails. Counting an image with no result is still a violation."""
    wiped = dict(status="FAILURE", processed=4, logs=[("ERROR", reason)])
    assert violations(details(**wiped, distinct=20), judgeable) == []
    assert violations(details(**wiped, distinct=3), judgeable) == [
        "job 1: progress says 4 processed (0 failed), only 3 images have a result"]
    assert violations(details(status="FAILURE", processed=4, distinct=20, logs=[("ERROR", "other")]), judgeable)


def test_what_antenna_cannot_judge_is_named():
    assert SANDBOX.not_judged() == {}
    assert set(ANTENNA.not_judged()) == {"progress counts each result once",
                                         "images of failed jobs without a result were abandoned"}
    assert not ANTENNA.image_ledger


def test_dead_images_are_accounted_for():
    jobs, _ = job_rows(details(status="FAILURE", processed=7, distinct=7, logs=[("ERROR", "dead")]))
    missing = [(1, 1), (1, 2), (1, 3)]
    handed, crashed = {"1:1": 3, "1:2": 2, "1:3": 1}, {"1:1": 3, "1:2": 1, "1:3": 1}
    kinds, problems = classify_dead_images(missing, jobs, handed, crashed, max_deliver=3)
    assert kinds == {"abandoned": 1, "answered": 1, "lost": 1, "faulted": 0}
    assert len(problems) == 2


def test_target_and_fixes_options(monkeypatch):
    monkeypatch.delenv("CHAOS_TARGET", raising=False)
    args = parse_args([])
    assert (args.target, args.fixes) == (TargetSpec("sandbox"), "on")
    args = parse_args(["--target", "sandbox", "--fixes", "off", "--setting", "STALLED_MINUTES=1"])
    env = stack_settings(args).env()
    assert (env["CHAOS_FIXES"], env["CHAOS_STALLED_MINUTES"], env["CHAOS_ACK_WAIT"]) == ("off", "1", "2.0")


def test_a_bad_target_is_refused(monkeypatch, tmp_path):
    with pytest.raises(SystemExit):
        parse_args(["--target", f"antenna:{tmp_path}"])
    monkeypatch.setenv("CHAOS_TARGET", "nonsense")
    with pytest.raises(SystemExit):
        parse_args([])
