"""A run's configuration, typed, from the command line to every process the run starts.

    settings = RunSettings.of({"fixes": "off", "ack_wait": 2})   # short names, CHAOS_* names, or a RunSettings
    settings.ack_wait, settings.fix_on("fencing"), settings.settle_bound()
    settings.env()   # {"CHAOS_FIXES": "off", "CHAOS_ACK_WAIT": "2.0", ...}: what child processes read

The CHAOS_* strings are the wire format only (environment variables of the web app, Celery and workers; the
settings a report records); everything in this process reads them back through `RunSettings.of`, once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

PREFIX, FIX_PREFIX = "CHAOS_", "CHAOS_FIX_"
OFF = ("0", "off", "false", "no")


def _flag(value: object) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() not in OFF


@dataclass(frozen=True, eq=False)
class RunSettings:
    """Defaults are the compressed timings every test and scenario runs with."""

    fixes: bool = True  # every fix on or off (each switch can be overridden below)
    ack_wait: float = 1.0  # seconds, job consumers' ack_wait
    max_deliver: int = 3
    sweep_interval: float = 1.0  # seconds between two reaper sweeps
    fetch_timeout: float = 0.25  # seconds a /tasks/ call waits for NATS
    stuck_grace: float = 1.0  # seconds past ack_wait before a job nobody fetches from is stuck
    retention: str = "limits"  # job streams: limits (Antenna) or workqueue
    result_backlog_grace: float = 20.0  # seconds accepted results may wait to be stored before they count as lost
    switches: Mapping[str, bool] = field(default_factory=dict)  # one fix's switch, e.g. {"sweep": False}
    extra: Mapping[str, str] = field(default_factory=dict)  # any other CHAOS_* (server URLs, a target's knobs)

    TYPED = ("fixes", "ack_wait", "max_deliver", "sweep_interval", "fetch_timeout", "stuck_grace", "retention",
             "result_backlog_grace")

    @classmethod
    def of(cls, settings: Mapping[str, object] | RunSettings | None = None, **overrides) -> RunSettings:
        """Read settings given by short name (`ack_wait`) or CHAOS_* name, as strings, numbers or bools."""
        if isinstance(settings, RunSettings):
            settings = settings.env()
        values, switches, extra = {}, {}, {}
        for key, value in {**(settings or {}), **overrides}.items():
            name = key.upper().removeprefix(PREFIX).lower()
            if name.startswith("fix_"):
                switches[name.removeprefix("fix_")] = _flag(value)
            elif name in cls.TYPED:
                kind = type(getattr(cls, name))
                values[name] = _flag(value) if kind is bool else kind(value)
            else:
                extra[PREFIX + name.upper()] = "on" if value is True else "off" if value is False else str(value)
        return cls(**values, switches=switches, extra=extra)

    def env(self) -> dict[str, str]:
        """The CHAOS_* environment of the run's processes."""
        out = {f"{PREFIX}{name.upper()}": str(getattr(self, name)) for name in self.TYPED}
        out["CHAOS_FIXES"] = "on" if self.fixes else "off"
        out.update({f"{FIX_PREFIX}{name.upper()}": "1" if on else "0" for name, on in self.switches.items()
                    if on != self.fixes})  # a switch that repeats the master switch changes nothing
        return {**out, **self.extra}

    def fix_on(self, switch: str) -> bool:
        """One fix's switch: its own override when set, else the master switch."""
        return self.switches.get(switch, self.fixes)

    def exhaustion(self) -> float:
        """Seconds until every delivered task has used up max_deliver, with a margin of two sweeps."""
        return self.ack_wait * self.max_deliver + 2 * self.sweep_interval + 1

    def settle_bound(self) -> float:
        """Time after the last heal for a job to end: exhaust every delivery, be seen by enough sweeps (and, with
        replicated streams, look lost or stuck for the fixes' replicated_span)."""
        return (self.ack_wait * self.max_deliver + 4 * self.sweep_interval + self.ack_wait + self.stuck_grace + 5
                + self.replicated_span())

    def unavailable_limit(self) -> float:
        """Seconds a job's queue may go unanswered before the fixes fail the job (CHAOS_UNAVAILABLE_LIMIT, else
        the library's default); 0: never."""
        from fixes.config import UNAVAILABLE_LIMIT_DEFAULT

        value = self.extra.get("CHAOS_UNAVAILABLE_LIMIT")
        return float(value) if value not in (None, "") else UNAVAILABLE_LIMIT_DEFAULT

    def replicated_span(self) -> float:
        """Seconds a job on replicated streams (CHAOS_STREAM_REPLICAS > 1) must look lost or stuck before the
        fixes act on it (CHAOS_REPLICATED_SPAN, else the library's default); 0 on a single node."""
        from fixes.config import REPLICATED_SPAN_DEFAULT

        if int(self.extra.get("CHAOS_STREAM_REPLICAS") or 1) <= 1:
            return 0.0
        return float(self.extra.get("CHAOS_REPLICATED_SPAN") or REPLICATED_SPAN_DEFAULT)

