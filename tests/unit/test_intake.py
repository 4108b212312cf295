"""Result intake decisions without servers: which reply subjects may be queued, stored and acked."""

from fixes.intake import FORGED, INVALID, STALE, bind_to_handouts, first_per_image, latest_per_task, triage
from fixes.layout import QueueLayout

LAYOUT = QueueLayout(per_attempt_consumer=True)


def subject(job: int = 1, attempt: int = 2, seq: int = 3) -> str:
    return f"$JS.ACK.job_{job}.job-{job}-consumer-a{attempt}.1.{seq}.{seq}.1795386122094724817.0"


def test_triage_accepts_the_current_attempt_only():
    subjects = [subject(), subject(attempt=1), subject(job=9), "$JS.API.STREAM.DELETE.job_1",
                subject() + " PUB x 1", 42]
    assert triage(subjects, LAYOUT, job_id=1, attempt=2) == [None, STALE, STALE, INVALID, INVALID, INVALID]


def test_first_result_per_image_is_stored_repeats_and_earlier_ones_are_not():
    assert first_per_image(["a", "b", "a", None, None, "c"], stored={"c"}) == [True, True, False, True, True, False]


def test_a_reply_subject_must_name_a_delivery_handed_out_for_the_image_posted():
    subjects = [subject(seq=3), subject(seq=4), subject(seq=5), subject(seq=6), subject(seq=7), "x"]
    images = ["a", "b", "a", None, "c", "a"]
    handed = {3: "a", 4: "a", 6: "d", 7: None}  # 5 was never handed out (a made-up subject)
    triaged = [None, None, None, None, None, INVALID]
    assert bind_to_handouts(subjects, images, handed, triaged) == [None, FORGED, FORGED, None, None, INVALID]


def test_a_task_pulled_twice_in_one_batch_is_handed_out_once_with_its_newest_delivery():
    from fixes.jetstream import Delivery

    old, new, other = Delivery(b"a", "r1", 7, 1), Delivery(b"a", "r2", 7, 2), Delivery(b"b", "r3", 3, 1)
    assert latest_per_task([old, other, new]) == [other, new]
    assert latest_per_task([new, old]) == [new]
