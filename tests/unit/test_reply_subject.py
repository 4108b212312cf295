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


# ---- fencing (nats-facts Q9: with one consumer name for every attempt a stale ack acks the new attempt's task)

PER_ATTEMPT = QueueLayout(per_attempt_consumer=True)


def test_fence_accepts_the_current_attempts_consumer():
    ref = parse_reply_subject("$JS.ACK.job_1.job-1-consumer-a2.1.3.3.1795386122094724817.2")
    assert belongs_to_attempt(ref, PER_ATTEMPT, 1, 2)


def test_fence_rejects_a_delivery_of_the_previous_attempt_with_the_same_sequences():
    stale = parse_reply_subject("$JS.ACK.job_1.job-1-consumer-a1.1.3.3.1795386122094724817.2")
    assert not belongs_to_attempt(stale, PER_ATTEMPT, 1, 2)


def test_fence_rejects_other_job_or_consumer():
    ref = parse_reply_subject("$JS.ACK.job_2.job-2-consumer-a2.1.3.3.1795386122094724817.2")
    assert not belongs_to_attempt(ref, PER_ATTEMPT, 1, 2)
    ref = parse_reply_subject("$JS.ACK.job_1.other.1.3.3.1795386122094724817.2")
    assert not belongs_to_attempt(ref, PER_ATTEMPT, 1, 2)


def test_a_per_attempt_layout_needs_the_attempt():
    with pytest.raises(ValueError):
        PER_ATTEMPT.consumer(1)
    assert QueueLayout().consumer(1, 5) == "job-1-consumer"  # Antenna's name: one for every attempt


@pytest.mark.parametrize("tail", [" x", "\r\nPUB x 1", "\t", "*", ">"])
def test_whitespace_and_wildcards_anywhere_are_refused(tail):
    for subject in (f"$JS.ACK.job_1.job-1-consumer{tail}.1.3.3.17.2",
                    f"$JS.ACK._.ACCHASH.job_1.c.1.3.3.17.2.rand{tail}"):
        with pytest.raises(ValueError):
            parse_reply_subject(subject)


def test_too_many_tokens_are_refused():
    with pytest.raises(ValueError):
        parse_reply_subject("$JS.ACK._.ACCHASH.job_1.c.1.3.3.17.2.rand.extra")


@pytest.mark.parametrize("subject", [
    "$JS.ACK.job_1.job-1-consumer.1.3.3.1795386122089878710.2 ",  # a trailing space
    "$JS.ACK.job_1.job-1-consumer.1.3.3.1795386122089878710.2\r\nPUB $JS.API.STREAM.DELETE.job_1 0",
    "$JS.ACK.job_1.job-1-consumer.1.3.3.1795386122089878710.\t2",
    "$JS.ACK.jöb_1.job-1-consumer.1.3.3.1795386122089878710.2",  # unicode in a name
    "$JS.ACK._.ACCHASH.job_1.c.1.3.3.17.2.ránd",  # unicode in the random tail
    "$JS.ACK.job_1.job-1-consumer.1.3.3.1795386122089878710",  # 8 tokens
    "$JS.ACK._.ACCHASH.job_1.c.1.3.3.17",  # 10 tokens
    "$JS.ACK.job_1.job-1-consumer.1.3.3.1795386122089878710.2" + "0" * 250,  # over-long
])
def test_whitespace_unicode_wrong_token_counts_and_over_long_subjects_are_refused(subject):
    with pytest.raises(ValueError):
        parse_reply_subject(subject)
