"""`python -m harness.load.run --workers 2`: a tiny distributed Locust swarm against a real sandbox stack."""

import json

import pytest

from harness.load.run import parse_args, run

pytestmark = pytest.mark.integration


def test_two_workers_each_answer_tasks_and_report_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)  # a relative --out, as the default reports/load-<time> is
    args = parse_args(["--target", "sandbox", "--workers", "2", "--jobs", "2", "--images", "120", "--users", "4",
                       "--duration", "30", "--terminal-timeout", "30", "--out", tmp_path.name])
    report, summary = run(args)

    assert report.ok, report.violations
    workers = summary["workers"]
    assert sorted(w["index"] for w in workers) == [0, 1]
    assert all(w["users"] == 2 and w["tasks"] > 0 and w["requests"] > 0 for w in workers), workers
    # every answered task was counted by exactly one worker, and the swarm's counts are their sum
    answered = summary["batches"].get("success_tasks", 0) + summary["batches"].get("error_tasks", 0)
    assert sum(w["tasks"] for w in workers) == answered >= sum(job.processed for job in report.jobs) > 0
    assert sum(w["requests"] for w in workers) == sum(summary["requests"].values())
    assert json.loads((tmp_path / "summary.json").read_text())["workers"] == workers
    assert {p.name for p in tmp_path.glob("locust-*.log")} == {
        "locust-master.log", "locust-worker-0.log", "locust-worker-1.log"}
