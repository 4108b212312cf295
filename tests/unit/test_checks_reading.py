"""The checker's own reading of NATS: names, ack subjects, queue reads, and the sampler's failed reads."""

import asyncio
from types import SimpleNamespace

import nats.errors
import nats.js.errors
import pytest

from fixes.config import FixesConfig
from fixes.layout import QueueLayout, parse_reply_subject
from harness.checks.nats_reader import is_unavailable, read_queue
from harness.checks.sampler import Sampler
from harness.checks.snapshot import Sources
from harness.checks.subjects import QueueNames, fencing_on, job_of_stream, parse_ack
from harness.history import History

V1 = "$JS.ACK.job_1.job-1-consumer-a2.1.3.3.1795386122089878710.2"
V2 = "$JS.ACK.hub.ACCHASH.job_1.job-1-consumer.2.3.4.1795386122094724817.7.r4nd0m"


@pytest.mark.parametrize("subject", [V1, V2, "$JS.ACK._.ACC.job_7.c.1.2.3.4.5"])
def test_ack_subjects_parse_as_the_server_writes_them(subject):
    mine, theirs = parse_ack(subject), parse_reply_subject(subject)
    assert (mine.stream, mine.consumer, mine.delivered, mine.stream_seq, mine.pending) == (
        theirs.stream, theirs.consumer, theirs.num_delivered, theirs.stream_seq, theirs.pending)


@pytest.mark.parametrize("garbage", [None, 7, "", "hello", "$JS.ACK", "$JS.API.STREAM.DELETE.job_1",
                                     "$JS.ACK.job_1.c.1.x.3.4.5", "$JS.ACK.job_1.c.1.2.3.4.5.6"])
def test_anything_else_names_no_delivery(garbage):
    assert parse_ack(garbage) is None


@pytest.mark.parametrize("settings", [{}, {"CHAOS_FIXES": "off"}, {"CHAOS_FIXES": "on", "CHAOS_FIX_FENCING": "0"},
                                      {"CHAOS_FIXES": "off", "CHAOS_FIX_FENCING": "1"}])
def test_names_agree_with_what_the_sandbox_configures(settings):
    fencing = FixesConfig.from_env(settings, prefix="CHAOS_").fencing
    layout, names = QueueLayout(per_attempt_consumer=fencing), QueueNames.of(settings)
    assert fencing_on(settings) == fencing
    assert (names.stream(4), names.consumer(4, 2)) == (layout.stream(4), layout.consumer(4, 2))


def test_an_advisory_names_its_job_by_the_stream():
    assert (job_of_stream("job_12"), job_of_stream("job_x"), job_of_stream("other_12")) == (12, None, None)


class FakeJetStream:
    """nats-py's JetStream context: stream_info and consumer_info, answering from dicts or raising."""

    def __init__(self, streams=None, consumers=None, error: Exception | None = None):
        self.streams, self.consumers, self.error, self.asked = streams or {}, consumers or {}, error, []

    async def stream_info(self, name):
        self.asked.append(name)
        if self.error:
            raise self.error
        if name not in self.streams:
            raise nats.js.errors.NotFoundError(code=404, err_code=10059, description="stream not found")
        return SimpleNamespace(state=SimpleNamespace(**self.streams[name]))

    async def consumer_info(self, stream, name):
        self.asked.append(name)
        if (stream, name) not in self.consumers:
            raise nats.js.errors.NotFoundError(code=404, err_code=10014, description="consumer not found")
        return SimpleNamespace(delivered=SimpleNamespace(stream_seq=3, consumer_seq=4), **self.consumers[stream, name])


STATE = {"messages": 3, "first_seq": 1, "last_seq": 3}
CONSUMER = {"num_pending": 1, "num_ack_pending": 2, "num_waiting": 0, "num_redelivered": 1}


def test_a_missing_stream_is_an_answer():
    found = asyncio.run(read_queue(FakeJetStream(), QueueNames(True), 1, 2))
    assert not found["stream_exists"] and not found["consumer_exists"] and found["consumer"] == "job-1-consumer-a2"


def test_the_consumer_of_the_current_attempt_is_read():
    js = FakeJetStream({"job_1": STATE}, {("job_1", "job-1-consumer-a1"): CONSUMER})
    assert not asyncio.run(read_queue(js, QueueNames(True), 1, 2))["consumer_exists"]  # a1 is an earlier attempt
    found = asyncio.run(read_queue(js, QueueNames(True), 1, 1))
    assert found["stream_exists"] and found["consumer_exists"]
    assert (found["last_seq"], found["num_pending"], found["num_ack_pending"], found["delivered_stream_seq"]) == (3, 1, 2, 3)


def test_one_consumer_for_every_attempt_without_fencing():
    js = FakeJetStream({"job_1": STATE}, {("job_1", "job-1-consumer"): CONSUMER})
    assert asyncio.run(read_queue(js, QueueNames(False), 1, 5))["consumer_exists"]


@pytest.mark.parametrize(("error", "unavailable"), [(nats.errors.TimeoutError(), True),
                                                    (nats.errors.NoRespondersError(), True),
                                                    (nats.errors.ConnectionClosedError(), True),
                                                    (KeyError("state"), False)])
def test_a_failed_read_raises_and_says_whether_nats_answered(error, unavailable):
    with pytest.raises(type(error)):
        asyncio.run(read_queue(FakeJetStream(error=error), QueueNames(True), 1, 1))
    assert is_unavailable(error) is unavailable


def sampler(history: History, jobs: list[int]) -> Sampler:
    return Sampler(Sources("postgresql://nowhere", "nats://nowhere", "redis://nowhere", {"CHAOS_FIXES": "on"}),
                   history, jobs)


def test_nats_not_answering_is_one_sample_error_per_tick():
    history, jobs = History(), [1, 2]
    found = sampler(history, jobs)
    found._js = js = FakeJetStream(error=nats.errors.TimeoutError())
    queues = asyncio.run(found._read_queues({1: 1, 2: 1}))
    assert queues == {1: None, 2: None} and js.asked == ["job_1"]
    (op,) = history.of("sample-error")
    assert op.value["source"] == "nats" and op.value["unavailable"] is True and op.value["jobs"] == [1, 2]


def test_a_misread_is_recorded_per_job_and_the_others_are_read():
    history = History()
    found = sampler(history, [1])
    found._js = FakeJetStream(error=KeyError("state"))
    asyncio.run(found._read_queues({1: 1, 2: 1}))
    assert [(op.value["jobs"], op.value["unavailable"]) for op in history.of("sample-error")] == [([1], False), ([2], False)]


def test_a_database_that_does_not_answer_is_recorded_not_swallowed():
    import psycopg

    history = History()
    found = sampler(history, [1])

    def broken():
        raise psycopg.OperationalError("connection refused")

    assert found._read("database", [1], broken, lambda exc: isinstance(exc, psycopg.OperationalError)) is None
    (op,) = history.of("sample-error")
    assert op.value == {"source": "database", "jobs": [1], "error": "OperationalError: connection refused",
                        "unavailable": True}


def test_a_nats_outage_lasts_until_its_heal_has_answered():
    """Nodes a heal starts again elect their leaders (and redeliver at once) while the heal waits for them:
    the outage ends with the heal's answer, not its ask."""
    from harness.checks.ops import nats_outages
    from harness.history import Op

    history = [Op(1.0, "nemesis", "inject", "invoke", {"fault": "nats-lose-quorum"}),
               Op(1.2, "nemesis", "inject", "ok", {"fault": "nats-lose-quorum"}),
               Op(3.0, "nemesis", "heal", "invoke", {"fault": "nats-lose-quorum"}),
               Op(7.5, "nemesis", "heal", "ok", {"fault": "nats-lose-quorum"}),
               Op(9.0, "nemesis", "inject", "invoke", {"fault": "nats-pause"})]
    assert nats_outages(history) == [(1.0, 7.5), (9.0, float("inf"))]
