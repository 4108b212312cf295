"""Which fixes are switched on, and their timing knobs. No Django import: settings feed it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

SWEEP_INTERVAL_DEFAULT = 60.0  # seconds between two periodic sweeps
STUCK_GRACE_DEFAULT = 5.0  # seconds beyond ack_wait before "no delivery activity" counts as stuck
CONFIRMATIONS_DEFAULT = 2  # consecutive looks a condition must hold on before the reaper acts
RESULT_BACKLOG_GRACE_DEFAULT = 600.0  # seconds a queued, unstored result keeps its job from being reaped
START_TIMEOUT_DEFAULT = 600.0  # seconds a Start may wait for its run (or a cancel for its end) before the sweep acts
REPLICATED_SPAN_DEFAULT = 30.0  # seconds a replicated job must look lost or stuck before the sweep acts
UNAVAILABLE_LIMIT_DEFAULT = 3600.0  # seconds a running job's queue may go unanswered before the sweep fails the job


@dataclass(frozen=True)
class FixesConfig:
    inline_reaper: bool = True  # /tasks/ assesses the job when it has nothing to hand out
    sweep: bool = True  # periodic Celery beat sweep over running async jobs
    stuck_detection: bool = True  # fail jobs whose work sits idle with nobody fetching
    stream_lost_detection: bool = True  # fail jobs whose stream vanished (ephemeral NATS restart)
    cleanup_on_terminal: bool = True  # delete stream, consumer and Redis state on REVOKED/FAILURE/SUCCESS
    idempotent_start: bool = True  # locked Start/retry: delete leftovers, publish once with dedupe ids
    fencing: bool = True  # one consumer per attempt; results of an earlier attempt are refused and never acked
    dedupe_results: bool = True  # a second result for an image in the same attempt is acked, not stored
    advisories: bool = True  # name dead tasks from captured MAX_DELIVERIES advisories (the host's advisory stream)
    extend_on_result: bool = True  # a posted result restarts its task's ack_wait while it waits to be saved
    sweep_interval: float = SWEEP_INTERVAL_DEFAULT
    stuck_grace: float = STUCK_GRACE_DEFAULT
    stuck_action: str = "fail"  # "fail" | "warn" (log a warning, never fail)
    confirmations: int = CONFIRMATIONS_DEFAULT
    result_backlog_grace: float = RESULT_BACKLOG_GRACE_DEFAULT
    start_timeout: float = START_TIMEOUT_DEFAULT  # PENDING without a published run, or CANCELING, this long: rescued
    # seconds a running job's queue may stay without an answer (its stream without a leader, JetStream without
    # quorum, NATS down) before the sweep fails the job naming that cause (with stream_lost_detection); 0: never
    unavailable_limit: float = UNAVAILABLE_LIMIT_DEFAULT
    # replicated streams (a NATS cluster): seconds a job must look lost or stuck, on every look, before the sweep
    # acts, and the inline check leaves such jobs to the sweep. A node cut off from the cluster keeps answering as
    # the leader it was until it notices the lost quorum (10-20 s measured): "not found" for streams created since,
    # a consumer that stopped moving
    replicated_span: float = REPLICATED_SPAN_DEFAULT
    # seconds before the sweep looks again at the jobs it first saw dead, stuck or lost in a pass (the confirming
    # look); None: a quarter of sweep_interval; 0: the next pass confirms. At most half the interval.
    confirm_delay: float | None = None
    # seconds one web process skips the inline check of a job after it found the job healthy (tasks out with
    # other workers, none missing): N workers polling a drained job pay one check per window, not N. Delays the
    # inline verdict by at most this. None: a quarter of ack_wait; 0: every empty call checks
    inline_recheck: float | None = None

    def __post_init__(self):
        if self.sweep_interval <= 0:
            raise ValueError(f"sweep_interval must be > 0, got {self.sweep_interval}")
        if self.stuck_grace < 0:
            raise ValueError(f"stuck_grace must be >= 0, got {self.stuck_grace}")
        if self.stuck_action not in ("fail", "warn"):
            raise ValueError(f"stuck_action must be 'fail' or 'warn', got {self.stuck_action!r}")
        if self.result_backlog_grace < 0:
            raise ValueError(f"result_backlog_grace must be >= 0, got {self.result_backlog_grace}")
        if self.start_timeout <= 0:
            raise ValueError(f"start_timeout must be > 0, got {self.start_timeout}")
        if self.replicated_span < 0:
            raise ValueError(f"replicated_span must be >= 0, got {self.replicated_span}")
        if self.unavailable_limit < 0:
            raise ValueError(f"unavailable_limit must be >= 0 (0: never), got {self.unavailable_limit}")
        if self.inline_recheck is not None and self.inline_recheck < 0:
            raise ValueError(f"inline_recheck must be >= 0, got {self.inline_recheck}")
        if self.confirm_delay is not None and self.confirm_delay < 0:
            raise ValueError(f"confirm_delay must be >= 0, got {self.confirm_delay}")
        if self.confirmations < 1:
            raise ValueError(f"confirmations must be >= 1, got {self.confirmations}")

    @property
    def confirm_after(self) -> float:
        """Seconds the sweep waits for its confirming look (0: none within the pass)."""
        delay = self.sweep_interval / 4 if self.confirm_delay is None else self.confirm_delay
        return min(delay, self.sweep_interval / 2) if self.confirmations > 1 else 0.0

    @classmethod
    def switches(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls) if f.type in ("bool", bool)]

    @classmethod
    def all_off(cls, **overrides) -> FixesConfig:
        return cls(**{**{name: False for name in cls.switches()}, **overrides})

    @classmethod
    def from_env(cls, environ: Mapping[str, str], prefix: str) -> FixesConfig:
        """<prefix>FIXES=on|off sets every switch; <prefix>FIX_<SWITCH>=0|1 overrides one of them;
        <prefix>SWEEP_INTERVAL, STUCK_GRACE, RESULT_BACKLOG_GRACE, START_TIMEOUT, UNAVAILABLE_LIMIT, REPLICATED_SPAN,
        CONFIRM_DELAY, INLINE_RECHECK, STUCK_ACTION set the knobs."""
        master = environ.get(f"{prefix}FIXES", "on").strip().lower()
        if master not in ("on", "off", "1", "0", "true", "false"):
            raise ValueError(f"{prefix}FIXES must be on or off, got {master!r}")
        enabled = master in ("on", "1", "true")
        values: dict = {name: enabled for name in cls.switches()}
        for name in cls.switches():
            raw = environ.get(f"{prefix}FIX_{name.upper()}")
            if raw is not None:
                values[name] = raw.strip().lower() in ("1", "on", "true", "yes")
        if f"{prefix}SWEEP_INTERVAL" in environ:
            values["sweep_interval"] = float(environ[f"{prefix}SWEEP_INTERVAL"])
        if f"{prefix}STUCK_GRACE" in environ:
            values["stuck_grace"] = float(environ[f"{prefix}STUCK_GRACE"])
        if f"{prefix}RESULT_BACKLOG_GRACE" in environ:
            values["result_backlog_grace"] = float(environ[f"{prefix}RESULT_BACKLOG_GRACE"])
        if f"{prefix}START_TIMEOUT" in environ:
            values["start_timeout"] = float(environ[f"{prefix}START_TIMEOUT"])
        if f"{prefix}REPLICATED_SPAN" in environ:
            values["replicated_span"] = float(environ[f"{prefix}REPLICATED_SPAN"])
        if f"{prefix}UNAVAILABLE_LIMIT" in environ:
            values["unavailable_limit"] = float(environ[f"{prefix}UNAVAILABLE_LIMIT"])
        if f"{prefix}CONFIRM_DELAY" in environ:
            values["confirm_delay"] = float(environ[f"{prefix}CONFIRM_DELAY"])
        if f"{prefix}INLINE_RECHECK" in environ:
            values["inline_recheck"] = float(environ[f"{prefix}INLINE_RECHECK"])
        if f"{prefix}STUCK_ACTION" in environ:
            values["stuck_action"] = environ[f"{prefix}STUCK_ACTION"]
        return cls(**values)
