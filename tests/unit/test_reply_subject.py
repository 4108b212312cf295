import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixes.layout import AckRef, QueueLayout, belongs_to_attempt, parse_reply_subject

LAYOUT = QueueLayout()
V1 = "$JS.ACK.job_1.job-1-consumer.1.3.3.1795386122089878710.2"
V2 = "$JS.ACK.hub.ACCHASH.job_1.job-1-consumer.2.3.4.1795386122094724817.7.r4nd0m"


def test_parses_v1():
    assert parse_reply_subject(V1) == AckRef("job_1", "job-1-consumer", 1, 3, 3, 1795386122089878710, 2)


def test_parses_v2_with_domain_and_account_hash():
    ref = parse_reply_subject(V2)
    assert (ref.stream, ref.consumer, ref.num_delivered, ref.stream_seq, ref.consumer_seq) == (
        "job_1",
        "job-1-consumer",
        2,
        3,
        4,
    )
    assert ref.pending == 7 and ref.domain == "hub"
    assert ref.timestamp == pytest.approx(1795386122.094724817)


def test_v2_without_domain_uses_underscore():
    assert parse_reply_subject("$JS.ACK._.ACC.s.c.1.2.3.4.5.x").domain is None


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "hello",
        "$JS.ACK",
        "$JS.ACK.job_1.job-1-consumer.1.3.3.17953861.2.9",  # 10 tokens
        "$JS.ACK.job_1.job-1-consumer.1.3.x.1795386122089878710.2",
        "$JS.ACK.job_1.job-1-consumer.-1.3.3.1795386122089878710.2",
        "$JS.ACK.job_1..1.3.3.1795386122089878710.2",
        "$JS.ACK.job_1.*.1.3.3.1795386122089878710.2",
        "$JS.API.STREAM.DELETE.job_1.a.b.c.d",
        "$JS.ACK.job_1.job-1-consumer.1.3.3.１２.2",  # non-ascii digits
        "_INBOX.abc.def.1.2.3.4.5.6",
    ],
)
def test_garbage_raises_value_error(garbage):
    with pytest.raises(ValueError):
        parse_reply_subject(garbage)


def test_non_string_raises_value_error():
    with pytest.raises(ValueError):
        parse_reply_subject(None)  # type: ignore[arg-type]


@given(st.text(max_size=80))
def test_never_raises_anything_but_value_error(text):
    try:
        ref = parse_reply_subject(text)
    except ValueError:
        return
    assert text.startswith("$JS.ACK.") and ref.stream and ref.consumer


@given(
    stream=st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
    consumer=st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
    numbers=st.tuples(*[st.integers(0, 2**63)] * 5),
)
def test_round_trip(stream, consumer, numbers):
    delivered, sseq, cseq, ts, pending = numbers
    ref = parse_reply_subject(f"$JS.ACK.{stream}.{consumer}.{delivered}.{sseq}.{cseq}.{ts}.{pending}")
    assert ref == AckRef(stream, consumer, delivered, sseq, cseq, ts, pending)


# ---- fencing (nats-facts Q9: a stale ack after re-create acks the new attempt's task) ----------------------

STARTED = 1795386122.090  # the new attempt's stream creation time


def test_fence_accepts_current_attempt():
    ref = parse_reply_subject("$JS.ACK.job_1.job-1-consumer.1.3.3.1795386122094724817.2")
    assert belongs_to_attempt(ref, LAYOUT, 1, STARTED)


def test_fence_rejects_stale_reply_from_previous_attempt_with_same_sequences():
    stale = parse_reply_subject(V1)  # stored 0.3 ms before the re-created stream existed
    assert not belongs_to_attempt(stale, LAYOUT, 1, STARTED)


def test_fence_rejects_other_job_or_consumer():
    ref = parse_reply_subject("$JS.ACK.job_2.job-2-consumer.1.3.3.1795386122094724817.2")
    assert not belongs_to_attempt(ref, LAYOUT, 1, STARTED)
    ref = parse_reply_subject("$JS.ACK.job_1.other.1.3.3.1795386122094724817.2")
    assert not belongs_to_attempt(ref, LAYOUT, 1, STARTED)


@given(
    started_us=st.integers(1_500_000_000_000_000, 2_500_000_000_000_000),
    offset_ns=st.integers(-(10**12), 10**12),
)
def test_fence_is_exact_to_the_nanosecond_at_microsecond_start_times(started_us, offset_ns):
    # stream creation times come microsecond-truncated; the float must not blur the threshold
    started_ns = started_us * 1000
    ref = AckRef("job_1", "job-1-consumer", 1, 1, 1, started_ns + offset_ns, 0)
    assert belongs_to_attempt(ref, LAYOUT, 1, started_us / 1e6) == (offset_ns >= 0)
