"""The fixes' Antenna PR (fixes/antenna/antenna.patch): it applies to the Antenna snapshot, the patched copy is
cached and rebuilt when its inputs change, the user's checkout is never written to, a drifted checkout is told
which hunk failed, and the harness's knobs reach the patched settings (overlay/chaos_antenna_fixes.py)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from fixes.config import FixesConfig
from harness.targets.antenna import checkout as pr

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = ROOT / "harness" / "targets" / "antenna" / "overlay" / "chaos_antenna_fixes.py"


def _snapshot() -> Path | None:
    target = os.environ.get("CHAOS_TARGET", "")
    candidates = [Path(target.split(":", 1)[1])] if target.startswith("antenna:") else []
    candidates.append(ROOT.parent / "shared" / "targets" / "antenna")
    return next((path.resolve() for path in candidates if (path / "manage.py").is_file()), None)


SNAPSHOT = _snapshot()
needs_snapshot = pytest.mark.skipif(
    SNAPSHOT is None, reason="no Antenna checkout: neither CHAOS_TARGET=antenna:PATH nor ../shared/targets/antenna")


def _state(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file's size, mtime and content digest: what 'never written to' is checked against."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CHAOS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def own_checkout(tmp_path) -> Path:
    """A writable copy of the snapshot, standing for a user's checkout that may drift."""
    copy = tmp_path / "antenna"
    shutil.copytree(SNAPSHOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for path in [copy, *copy.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    return copy


def test_the_patch_names_only_backend_files():
    touched = pr.touched(pr.PATCH.read_bytes())
    assert "ami/jobs/fixes_binding.py" in touched and "config/settings/base.py" in touched
    assert all(not name.startswith(("/", "..")) and ".." not in Path(name).parts for name in touched)


@needs_snapshot
def test_the_patch_applies_and_the_checkout_is_never_written_to(cache):
    before = _state(SNAPSHOT)
    patched = pr.prepare(SNAPSHOT, fixes=True)
    assert patched.is_relative_to(cache) and (patched / ".ready").exists()
    assert (patched / "ami/jobs/fixes_binding.py").is_file()
    migrations = sorted((patched / "ami/jobs/migrations").glob("0*.py"))
    assert "attempt" in migrations[-1].read_text() and "fixes.django" in (patched / "config/settings/base.py").read_text()
    assert pr.prepare(SNAPSHOT, fixes=False) == SNAPSHOT
    assert _state(SNAPSHOT) == before


@needs_snapshot
def test_an_unchanged_checkout_reuses_its_copy_and_an_edit_builds_a_new_one(cache, own_checkout):
    first = pr.prepare(own_checkout, fixes=True)
    (first / "marker").write_text("built once")
    assert pr.prepare(own_checkout, fixes=True) == first and (first / "marker").exists()
    views = own_checkout / "ami" / "jobs" / "views.py"
    views.write_text(views.read_text() + "\n# a local edit outside the patch's hunks\n")
    second = pr.prepare(own_checkout, fixes=True)
    assert second != first and "a local edit" in (second / "ami/jobs/views.py").read_text()
    untouched = own_checkout / "ami" / "main" / "models.py"
    untouched.write_text(untouched.read_text() + "\n")
    assert pr.prepare(own_checkout, fixes=True) not in (first, second)


@needs_snapshot
def test_the_key_covers_the_patch_and_the_fixes_source(own_checkout, tmp_path, monkeypatch):
    patch = pr.PATCH.read_bytes()
    key = pr.copy_key(own_checkout, patch)
    assert pr.copy_key(own_checkout, patch + b"\n") != key
    fake = tmp_path / "project"
    shutil.copytree(pr.fixes_source() / "fixes", fake / "fixes", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(pr, "fixes_source", lambda: fake)
    assert pr.copy_key(own_checkout, patch) == key
    (fake / "fixes" / "config.py").write_text((fake / "fixes" / "config.py").read_text() + "\n")
    assert pr.copy_key(own_checkout, patch) != key


@needs_snapshot
def test_a_drifted_checkout_is_told_which_hunk_failed(cache, own_checkout):
    views = own_checkout / "ami" / "jobs" / "views.py"
    views.write_text(views.read_text().replace("job.enqueue()\n        job.refresh_from_db()",
                                               "job.enqueue(priority=1)\n        job.refresh_from_db()", 1))
    with pytest.raises(pr.PatchDoesNotApply, match=r"ami/jobs/views\.py: hunk #\d+ `@@ .*@@"):
        pr.prepare(own_checkout, fixes=True)
    assert not [p for p in cache.glob("antenna-fixes-*") if p.is_dir()]  # no half-patched copy is left


def test_fixes_source_holds_the_package():
    assert (pr.fixes_source() / "fixes" / "django" / "binding.py").is_file()


def _overlay():
    spec = importlib.util.spec_from_file_location("chaos_antenna_fixes", OVERLAY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_run_knobs_reach_the_patched_settings():
    health = {"task": "ami.jobs.tasks.jobs_health_check", "schedule": timedelta(seconds=2)}
    namespace = {"NATS_TASK_TTR": 300, "NATS_MAX_DELIVER": 2, "NATS_FETCH_TIMEOUT": 0.5,
                 "CELERY_BEAT_SCHEDULE": {"jobs.health_check": health, "fixes-sweep": {"task": "fixes.sweep"}}}
    environ = {"CHAOS_FIXES": "on", "CHAOS_ACK_WAIT": "1", "CHAOS_MAX_DELIVER": "3", "CHAOS_SWEEP_INTERVAL": "1.4",
               "CHAOS_STUCK_GRACE": "1", "CHAOS_FETCH_TIMEOUT": "0.25", "CHAOS_FIX_STUCK_DETECTION": "0"}
    config = _overlay().enable(namespace, environ)
    assert (namespace["NATS_TASK_TTR"], namespace["NATS_MAX_DELIVER"], namespace["NATS_FETCH_TIMEOUT"]) == (1.0, 3, 0.25)
    assert namespace["FIXES"] == config == FixesConfig(stuck_detection=False, sweep_interval=1.4, stuck_grace=1.0)
    assert namespace["CELERY_BEAT_SCHEDULE"] == {
        "jobs.health_check": health, "fixes-sweep": {"task": "fixes.sweep", "schedule": timedelta(seconds=1)}}


def test_no_sweep_no_beat_entry_and_absent_knobs_keep_the_prs_values():
    namespace = {"NATS_TASK_TTR": 300, "CELERY_BEAT_SCHEDULE": {"fixes-sweep": {"task": "fixes.sweep"}}}
    _overlay().enable(namespace, {"CHAOS_FIX_SWEEP": "0"})
    assert namespace["NATS_TASK_TTR"] == 300 and namespace["CELERY_BEAT_SCHEDULE"] == {}
    assert namespace["FIXES"] == FixesConfig(sweep=False)
