"""The load runner's per-worker report: merging each Locust process's counts, the rows and the table."""

from harness.load.report import merge, worker_rows, worker_table


def entry(index, users, success=0, error=0, crashed=0, handed=None, dropped=None, requests=None, failures=None,
          between=()):
    return {"index": index, "host": f"h{index}", "pid": 100 + index, "users": users,
            "counts": {"success_tasks": success, "error_tasks": error, "crashed_tasks": crashed},
            "handed": handed or {}, "crashed": dropped or {}, "requests": requests or {},
            "failures": failures or {}, "answered_between": list(between)}


def test_merge_sums_counters_and_per_key_maps():
    merged = merge([
        entry(0, 2, success=32, error=16, crashed=16, handed={"1:5": 1, "1:6": 2}, dropped={"1:6": 1},
              requests={"/jobs": 3, "/jobs/[id]/tasks/": 4}, failures={"/jobs: 503": 1}, between=(10.0, 12.0)),
        entry(1, 2, success=16, handed={"1:6": 1, "1:7": 1}, requests={"/jobs": 2},
              failures={"/jobs: 503": 2, "result: 500": 1}, between=(9.5, 11.0)),
    ])
    assert (merged["success_tasks"], merged["error_tasks"], merged["crashed_tasks"]) == (48, 16, 16)
    assert merged["handed"] == {"1:5": 1, "1:6": 3, "1:7": 1}  # what the dead-image accounting reads
    assert merged["crashed"] == {"1:6": 1}
    assert merged["requests"] == {"/jobs": 5, "/jobs/[id]/tasks/": 4}
    assert merged["failures"] == {"/jobs: 503": 3, "result: 500": 1}
    assert merged["answered_between"] == [9.5, 12.0]  # earliest first POST to latest last
    assert [w["index"] for w in merged["workers"]] == [0, 1]
    assert all("handed" not in w and "crashed" not in w for w in merged["workers"])


def test_a_worker_that_answered_nothing_leaves_the_window_to_the_others():
    merged = merge([entry(0, 1, between=()), entry(1, 1, success=16, between=(3.0, 4.0))])
    assert merged["answered_between"] == [3.0, 4.0]
    assert merge([entry(0, 1)])["answered_between"] == []
    assert merge([])["workers"] == []


def test_rows_give_each_workers_share_of_the_swarms_rate():
    workers = merge([
        entry(1, 2, success=30, error=10, crashed=16, requests={"/jobs": 7}, failures={"/jobs: 503": 2}),
        entry(0, 3, success=60, requests={"/jobs": 9, "/jobs/[id]/result/": 4}),
    ])["workers"]
    rows = worker_rows(workers, answering_seconds=2.0)
    assert [(r["index"], r["users"], r["tasks"], r["tasks_per_s"], r["requests"], r["failures"])
            for r in rows] == [(0, 3, 60, 30.0, 13, 0), (1, 2, 40, 20.0, 7, 2)]
    assert rows[1]["crashed_tasks"] == 16  # dropped unanswered: not counted as tasks
    assert [r["tasks_per_s"] for r in worker_rows(workers, answering_seconds=0.0)] == [0.0, 0.0]


def test_table_has_a_line_per_worker_and_the_totals():
    rows = worker_rows(merge([entry(0, 2, success=50, requests={"/jobs": 4}),
                              entry(1, 2, success=30, error=20, requests={"/jobs": 6},
                                    failures={"/jobs: 503": 1})])["workers"], answering_seconds=4.0)
    lines = worker_table(rows).splitlines()
    assert lines[0].split() == ["worker", "host", "pid", "users", "tasks", "tasks/s", "dropped", "requests",
                                "failed"]
    assert lines[1].split() == ["0", "h0", "100", "2", "50", "12.5", "0", "4", "0"]
    assert lines[2].split() == ["1", "h1", "101", "2", "50", "12.5", "0", "6", "1"]
    assert lines[3].split() == ["all", "4", "100", "25.0", "0", "10", "1"]
