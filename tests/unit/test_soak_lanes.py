"""The soak's lanes: every schedule runs once, on whichever stack is free; a stack that does not start ends its
lane only."""

from dataclasses import dataclass, field

import pytest

from scenarios import runner
from scenarios.soak import play, seeds


@dataclass
class FakeStack:
    fails: bool = False
    started: bool = False
    stopped: bool = False
    ran: list = field(default_factory=list)

    def start(self):
        if self.fails:
            raise RuntimeError("no stack")
        self.started = True
        return self

    def stop(self, graceful=True):
        self.stopped = True


@dataclass
class FakeReport:
    ok: bool

    @property
    def composed(self):
        return type("Verdict", (), {"ok": self.ok})()


@pytest.fixture
def fake_run(monkeypatch):
    def run(scenario, stack, fixes, seed=0, on_note=None):
        stack.ran.append(seed)
        return FakeReport(ok=seed % 2 == 0)

    monkeypatch.setattr(runner, "run", run)


def test_every_schedule_runs_once_across_lanes(fake_run):
    stacks = []

    def build():
        stacks.append(FakeStack())
        return stacks[-1]

    wanted = seeds(2026, 12)
    played = play(wanted, build, "on", lanes=3)
    assert sorted(p.seed for p in played) == sorted(wanted)
    assert sorted(p.index for p in played) == list(range(1, 13))
    assert len(stacks) == 3 and all(s.stopped for s in stacks)
    assert sorted(seed for s in stacks for seed in s.ran) == sorted(wanted)
    assert {p.held for p in played} == {seed % 2 == 0 for seed in wanted}


def test_a_stack_that_does_not_start_ends_its_lane_only(fake_run):
    stacks = iter([FakeStack(fails=True), FakeStack()])
    played = play(seeds(1, 5), lambda: next(stacks), "on", lanes=2)
    assert len(played) == 5 and len({p.lane for p in played}) == 1


def test_no_stack_at_all_is_an_error(fake_run):
    with pytest.raises(RuntimeError, match="no stack"):
        play(seeds(1, 3), lambda: FakeStack(fails=True), "on", lanes=2)
