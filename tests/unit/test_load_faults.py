"""The load runner's fault schedule (`python -m harness.load.run --fault VERB@S[:ARG]`)."""

import argparse

import pytest

from harness.load.run import PlannedFault, parse_fault


@pytest.mark.parametrize(("text", "planned", "args"), [
    ("nats-restart@5", PlannedFault("nats-restart", 5.0), {}),
    ("nats-restart@5:wipe", PlannedFault("nats-restart", 5.0, "wipe"), {"wipe": True}),
    ("nats-pause@3:2.5", PlannedFault("nats-pause", 3.0, "2.5"), {"seconds": 2.5}),
    ("revoke@1", PlannedFault("revoke", 1.0), {"job": 7}),
    ("redis-flush", PlannedFault("redis-flush", 0.0), {}),
])
def test_schedule_entries(text, planned, args):
    assert parse_fault(text) == planned
    assert planned.args([7, 8]) == args
    assert str(planned) in (text, f"{text}@0")


@pytest.mark.parametrize("text", ["nats-explode@1", "nats-restart@soon"])
def test_bad_entries_name_the_problem(text):
    with pytest.raises(argparse.ArgumentTypeError, match="unknown fault|expected VERB@SECONDS"):
        parse_fault(text)
