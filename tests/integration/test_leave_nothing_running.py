"""Every process the harness starts is stopped when its owner ends — also when a test run is killed."""

import os
import signal
import subprocess
import sys
import textwrap
import uuid

import psutil
import pytest

from harness.infra.base import reap_orphans, run_tag
from harness.waiting import poll_until

pytestmark = pytest.mark.integration


def tagged(run_id: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if run_tag(proc)[0] == run_id:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def _default_sigint():
    # a background job of a non-interactive shell (as in CI) inherits SIGINT ignored; a person's Ctrl-C is not
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_test_run_stops_the_whole_stack(tmp_path, sig):
    run_id = f"cleanup-{uuid.uuid4().hex[:8]}"
    ready = tmp_path / "stack-is-up"
    (tmp_path / "test_hang.py").write_text(textwrap.dedent(f"""
        import pathlib, threading

        def test_hang(stack):
            pathlib.Path({str(ready)!r}).write_text(str(stack.web.pid))
            threading.Event().wait(120)
    """))
    env = {**os.environ, "CHAOS_RUN_ID": run_id}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                           cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           preexec_fn=_default_sigint)
    try:
        poll_until(ready.exists, timeout=90, interval=0.1, what="stack up inside the inner test run")
        assert len(tagged(run_id)) >= 6  # nats, redis, postgres, gunicorn, celery worker, beat (+ children)
        run.send_signal(sig)
        run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            reap_orphans(run_id)  # the failure is reported below; leave nothing behind either way
    poll_until(lambda: not tagged(run_id), timeout=20, what=f"every process of run {run_id} gone")
