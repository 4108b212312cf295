import pytest

from fixes.config import (
    CONFIRMATIONS_DEFAULT,
    STUCK_GRACE_DEFAULT,
    SWEEP_INTERVAL_DEFAULT,
    FixesConfig,
)
from fixes.layout import QueueLayout

SWITCHES = [
    "inline_reaper",
    "sweep",
    "stuck_detection",
    "stream_lost_detection",
    "cleanup_on_terminal",
    "idempotent_start",
    "fencing",
    "dedupe_results",
    "advisories",
    "extend_on_result",
]


def test_defaults_are_all_on():
    config = FixesConfig()
    assert all(getattr(config, name) for name in SWITCHES)
    assert (config.sweep_interval, config.stuck_grace, config.confirmations) == (
        SWEEP_INTERVAL_DEFAULT,
        STUCK_GRACE_DEFAULT,
        CONFIRMATIONS_DEFAULT,
    )
    assert config.stuck_action == "fail"


def test_switches_lists_only_booleans():
    assert FixesConfig.switches() == SWITCHES


def test_all_off_with_overrides():
    config = FixesConfig.all_off(fencing=True, stuck_grace=1.0)
    assert config.fencing and config.stuck_grace == 1.0
    assert not any(getattr(config, name) for name in SWITCHES if name != "fencing")


def test_from_env_empty_is_default():
    assert FixesConfig.from_env({}, prefix="CHAOS_") == FixesConfig()


@pytest.mark.parametrize("value", ["off", "OFF", "0", "false", " off "])
def test_from_env_master_off(value):
    assert FixesConfig.from_env({"CHAOS_FIXES": value}, prefix="CHAOS_") == FixesConfig.all_off()


@pytest.mark.parametrize("value", ["on", "1", "true", "True"])
def test_from_env_master_on(value):
    assert FixesConfig.from_env({"CHAOS_FIXES": value}, prefix="CHAOS_") == FixesConfig()


def test_from_env_single_switch_overrides_master():
    config = FixesConfig.from_env({"CHAOS_FIXES": "off", "CHAOS_FIX_FENCING": "1", "CHAOS_FIX_SWEEP": "yes"}, prefix="CHAOS_")
    assert config.fencing and config.sweep and not config.inline_reaper
    config = FixesConfig.from_env({"CHAOS_FIX_STUCK_DETECTION": "0"}, prefix="CHAOS_")
    assert not config.stuck_detection and config.fencing


def test_from_env_knobs_and_prefix():
    env = {"X_SWEEP_INTERVAL": "2.5", "X_STUCK_GRACE": "0", "X_STUCK_ACTION": "warn", "X_INLINE_RECHECK": "0"}
    config = FixesConfig.from_env(env, prefix="X_")
    assert (config.sweep_interval, config.stuck_grace, config.stuck_action) == (2.5, 0.0, "warn")
    assert config.inline_recheck == 0.0 and FixesConfig().inline_recheck is None
    assert FixesConfig.from_env(env, prefix="CHAOS_") == FixesConfig()  # other prefix: ignored


@pytest.mark.parametrize(
    "env",
    [
        {"CHAOS_FIXES": "maybe"},
        {"CHAOS_SWEEP_INTERVAL": "0"},
        {"CHAOS_STUCK_GRACE": "-1"},
        {"CHAOS_STUCK_ACTION": "explode"},
        {"CHAOS_SWEEP_INTERVAL": "soon"},
    ],
)
def test_from_env_rejects_bad_values(env):
    with pytest.raises(ValueError):
        FixesConfig.from_env(env, prefix="CHAOS_")


@pytest.mark.parametrize(
    "kwargs",
    [{"sweep_interval": -1}, {"stuck_grace": -0.1}, {"stuck_action": "retry"}, {"confirmations": 0},
     {"inline_recheck": -1}],
)
def test_validation(kwargs):
    with pytest.raises(ValueError):
        FixesConfig(**kwargs)


def test_frozen():
    with pytest.raises(AttributeError):
        FixesConfig().sweep = False  # type: ignore[misc]


def test_layout_names_and_validation():
    layout = QueueLayout()
    assert (layout.stream(7), layout.subject(7), layout.consumer(7)) == (
        "job_7",
        "job.7.tasks",
        "job-7-consumer",
    )
    assert layout.msg_id(7, 2, "img9") == "job7-a2-imgimg9"
    for bad in ({"retention": "interest"}, {"storage": "ssd"}, {"ack_wait": 0}, {"max_deliver": 0}):
        with pytest.raises(ValueError):
            QueueLayout(**bad)
