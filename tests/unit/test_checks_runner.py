"""What the runner makes of a run: which checks judge it, and a scenario that raised."""

from harness.checks import CHECKS, Verdict, applicable
from harness.history import History, Op
from scenarios.base import Scenario
from scenarios.runner import RunReport, ran

ALL_PASS = [Verdict(True, name) for name in CHECKS]


def report(fixes: str, verdicts: list[Verdict], error: str | None = None, **scenario) -> RunReport:
    kind = Scenario("s99_example", "An example.", lambda ctx: None, **scenario)
    return RunReport(kind, fixes, 0, {}, 0.0, 1.0, [*verdicts, ran(error, [])], History(), {}, error)


def test_a_check_of_what_only_some_runs_do_judges_only_the_runs_that_do_it():
    asked = Op(1.0, "fuzzer", "unauthorized", "invoke", {"job": 1})
    posted = Op(2.0, "worker-0", "post", "invoke", {"job": 1, "reply_subjects": []})
    assert "unauthorized_rejected" not in applicable([])
    assert "unauthorized_rejected" in applicable([asked])
    assert "no_early_redelivery" in applicable([posted]) and "no_early_redelivery" not in applicable([asked])
    assert set(applicable([])) == set(CHECKS) - {"unauthorized_rejected", "no_early_redelivery", "refusals_name_the_field",
                                                 "lost_tasks_named", "unanswered_jobs_failed"}
    purged = Op(3.0, "nemesis", "inject", "invoke", {"fault": "stream-purge", "job": 1})
    assert "lost_tasks_named" in applicable([purged]) and "lost_tasks_named" not in applicable([asked])


def test_a_scenario_that_raised_is_a_failed_run_with_the_fixes_off():
    failing = [Verdict(False if v.name == "terminal_within_bound" else True, v.name) for v in ALL_PASS]
    crashed = report("off", failing, "Traceback ...\nRuntimeError: boom", expect_off=frozenset({"terminal_within_bound"}))
    assert not crashed.incident_shown and not crashed.as_expected
    assert crashed.verdict("scenario_ran").ok is False and "RuntimeError: boom" in crashed.verdict("scenario_ran").samples[0]
    assert report("off", failing, expect_off=frozenset({"terminal_within_bound"})).as_expected


def test_a_scenario_that_raised_is_a_failed_run_with_the_fixes_on():
    assert not report("on", ALL_PASS, "Traceback ...\nRuntimeError: boom").as_expected
    assert not report("on", ALL_PASS, "Traceback ...\nRuntimeError: boom", known_gap="not cured").as_expected
    assert report("on", ALL_PASS).as_expected


def test_an_unknown_verdict_is_not_a_pass():
    unknown = [Verdict(None if v.name == "no_stale_results" else True, v.name) for v in ALL_PASS]
    assert report("on", unknown).composed.ok is None and not report("on", unknown).as_expected


def test_a_fault_that_was_not_healed_leaves_the_run_unknown():
    assert ran(None, ["nats-pause: heal failed"]).ok is None and ran(None, []).ok is True


def test_the_evidence_names_the_checks_that_did_not_judge():
    verdicts = [v for v in ALL_PASS if v.name != "unauthorized_rejected"]
    assert "not judged (the run did not exercise them): unauthorized_rejected" in report("on", verdicts).evidence()
