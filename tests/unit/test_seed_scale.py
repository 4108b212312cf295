"""The seed-scale replay's own judgement and its memory reading (the replay itself: `nox -s seed-scale`)."""

import os

from harness.bench.memory import Peak, PeakMemory, high_water_kib
from scenarios import all_scenarios
from scenarios.scale import NAME, judge

N = 44_286


def off_run(second_round: int) -> dict:
    return {"images": N, "first_round": N, "after_revoke": {"stream_exists": True, "messages": N},
            "second_start": {"messages": second_round}, "progress": 3_008}


def on_run(handed_out: int = N, rows: int = N, duplicates: int = 0) -> dict:
    return {"images": N, "first_round": N, "after_revoke": {"stream_exists": False, "messages": 0},
            "second_start": {"messages": N}, "status": "SUCCESS",
            "drain": {"handed_out": handed_out, "images_handed_out": N},
            "results": {"current_attempt_rows": rows, "distinct_images": N, "duplicates": duplicates}}


def test_fixes_off_needs_the_doubled_stream():
    assert all(judge(off_run(2 * N), "off").values())
    assert not judge(off_run(N), "off")["Start again queued every image twice"]


def test_fixes_on_fails_on_a_second_hand_out_or_a_second_result():
    assert all(judge(on_run(), "on").values())
    assert not judge(on_run(handed_out=N + 1), "on")["each image handed out once"]
    assert not judge(on_run(rows=N + 1, duplicates=1), "on")["one result per image"]


def test_the_scale_replay_stays_out_of_the_default_matrix():
    assert NAME not in all_scenarios()


def test_high_water_mark_of_this_process():
    assert high_water_kib(os.getpid()) > 0
    assert high_water_kib(2**22 + 1) is None  # beyond pid_max: no such process


def test_peaks_by_service():
    memory = PeakMemory(stack=None)
    memory.peaks = {1: Peak("postgres", 1, "postgres", 2048, True), 2: Peak("postgres", 2, "postgres", 1024, False),
                    3: Peak("postgres", 3, "postgres", 3072, False)}
    row = memory.by_service()["postgres"]
    assert (row["main_mib"], row["children"], row["largest_child_mib"], row["children_sum_mib"]) == (2.0, 2, 3.0, 4.0)
