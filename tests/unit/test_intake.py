"""Result intake decisions without servers: which reply subjects may be queued, stored and acked."""

from fixes.intake import INVALID, STALE, first_per_image, triage
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
