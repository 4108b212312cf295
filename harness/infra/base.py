"""ManagedProcess: one real server process with the verbs every chaos scenario needs.

start / stop / kill / restart(wipe) / pause / resume, a kept port, a log file, a temp dir, and a
run-id tag in the environment so that `reap_orphans()` can clear what a crashed run left behind.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from pathlib import Path

import psutil

from harness.infra.ready import Probe, wait_until_ready

RUN_ID = os.environ.get("CHAOS_RUN_ID") or uuid.uuid4().hex[:12]
PROJECT_ROOT = Path(__file__).resolve().parents[2]
TMP_PREFIX = "chaos-run-"  # + run id + owner pid: lets reap_orphans() tell a dead owner's dirs


def _tmp_root() -> Path:
    """CHAOS_TMPDIR, else /dev/shm when roomy (copying a cluster there is ~10x faster), else the temp dir."""
    if os.environ.get("CHAOS_TMPDIR"):
        return Path(os.environ["CHAOS_TMPDIR"])
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2**30:
        return shm
    return Path(tempfile.gettempdir())


TMP_ROOT = _tmp_root()

_OWNER_PID = os.getpid()
_live: dict[int, ManagedProcess] = {}  # insertion-ordered: stopped in reverse at exit
_lock = threading.Lock()
_ports_handed_out: set[int] = set()


def tmp_prefix() -> str:
    return f"{TMP_PREFIX}{RUN_ID}-{os.getpid()}-"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now and that this interpreter has not handed out before."""
    while True:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        with _lock:
            if port not in _ports_handed_out:
                _ports_handed_out.add(port)
                return port


class Service:
    """What every service class shares, whether a local process or a container: what it runs, how to
    tell it is ready, where to reach it, and `with` to start and stop it."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def probe(self) -> Probe:
        raise NotImplementedError

    @property
    def url(self) -> str:
        raise NotImplementedError

    def start(self):
        raise NotImplementedError

    def stop(self, *args, **kwargs) -> None:
        raise NotImplementedError

    def _await_ready(self, probe: Probe, began: float) -> None:
        """After launching: wait for the probe (killing what was launched if it never answers)."""
        self.paused = False
        try:
            wait_until_ready(probe, timeout=self.ready_timeout, name=self.name,
                             alive=lambda: self.is_running, logs=self.logs)
        except BaseException:
            self.kill()
            raise
        self.startup_seconds = time.perf_counter() - began

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info) -> None:
        self.stop()


class ManagedProcess(Service):
    """Base class; a service sets `name`, `command()`, `probe()` and optionally `prepare()`."""

    name = "process"
    stop_signal = signal.SIGTERM
    user: str | None = None  # run as this system user (PostgreSQL refuses to run as root)

    def __init__(self, *, env: Mapping[str, str] | None = None, ready_timeout: float = 30.0,
                 stop_timeout: float = 10.0):
        self.extra_env = dict(env or {})
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.tmpdir: Path | None = None
        self.startup_seconds: float | None = None  # how long the last start() took
        self.paused = False
        self.returncode: int | None = None  # of the last process, once it has exited
        self._proc: subprocess.Popen | None = None
        self._final_logs = ""

    # --- what a service defines (besides Service's command / probe / url) ---------------------
    def prepare(self) -> None:
        """Runs before every start, after the temp dir exists."""

    @property
    def data_dir(self) -> Path | None:
        """What wipe() deletes."""
        return None

    # --- verbs -------------------------------------------------------------------------------
    def start(self) -> ManagedProcess:
        if self.is_running:
            return self
        began = time.perf_counter()
        if self.tmpdir is None:
            self.tmpdir = Path(tempfile.mkdtemp(prefix=f"{tmp_prefix()}{self.name}-", dir=TMP_ROOT))
        with _lock:
            _live[id(self)] = self
        self.prepare()
        probe = self.probe()
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.environment(), cwd=self.tmpdir, start_new_session=True, user=self.user)
        self._await_ready(probe, began)
        return self

    def stop(self, timeout: float | None = None, keep_data: bool = False) -> None:
        """Graceful stop (SIGKILL after the timeout); the temp dir goes too unless `keep_data`."""
        self._halt(self.stop_timeout if timeout is None else timeout)
        if keep_data:
            return
        if self.tmpdir is not None:
            self._final_logs = self.logs(tail=200)
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        with _lock:
            _live.pop(id(self), None)

    close = stop

    def kill(self) -> None:
        """SIGKILL the whole process group; data stays, so start() afterwards is a crash recovery."""
        if self._proc is not None:
            self._signal_group(signal.SIGKILL)
            self._reap(timeout=5.0)

    def restart(self, wipe: bool = False) -> ManagedProcess:
        self._halt(self.stop_timeout)
        if wipe:
            self.wipe()
        return self.start()

    def wipe(self) -> None:
        if self.is_running:
            raise RuntimeError(f"{self.name}: stop or kill it before wiping its data")
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def pause(self) -> None:
        if self.is_running:
            self._signal_group(signal.SIGSTOP)
            self._wait_until_stopped()
            self.paused = True

    def _wait_until_stopped(self, timeout: float = 5.0) -> None:
        """SIGSTOP lands asynchronously: on a busy machine a thread can still answer a request sent
        right after kill() returned. Wait until every thread of the group is in state T."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                procs = [psutil.Process(self._proc.pid), *psutil.Process(self._proc.pid).children(recursive=True)]
                states = [t.status() for p in procs for t in (psutil.Process(x.id) for x in p.threads())]
            except psutil.Error:
                return
            if all(state in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP) for state in states):
                return
            time.sleep(0.01)

    def resume(self) -> None:
        self._signal_group(signal.SIGCONT)
        self.paused = False

    # --- state -------------------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.is_running else None

    def child_pids(self) -> list[int]:
        if not self.is_running:
            return []
        try:
            return [child.pid for child in psutil.Process(self._proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    @property
    def log_path(self) -> Path:
        assert self.tmpdir is not None, f"{self.name} has no temp dir before start()"
        return self.tmpdir / f"{self.name}.log"

    def logs(self, tail: int = 50) -> str:
        if self.tmpdir is None or not self.log_path.exists():
            return "\n".join(self._final_logs.splitlines()[-tail:])
        with open(self.log_path, errors="replace") as log:
            return "".join(deque(log, maxlen=tail))

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.extra_env, "CHAOS_RUN_ID": RUN_ID, "CHAOS_OWNER_PID": str(os.getpid())}

    def __repr__(self) -> str:
        state = "paused" if self.paused else "running" if self.is_running else "stopped"
        return f"<{type(self).__name__} {state} pid={self.pid}>"

    # --- internals ---------------------------------------------------------------------------
    def _halt(self, timeout: float) -> None:
        if self._proc is None:
            return
        if self.is_running:
            self._proc.send_signal(self.stop_signal)
            if self.paused:
                self.resume()  # a stopped process only sees the pending signal once continued
        self._reap(timeout)

    def _reap(self, timeout: float) -> None:
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self._proc.wait(5.0)
        # children that outlived their parent; done right away, before the group id can be reused
        self._signal_group(signal.SIGKILL)
        self.returncode, self._proc, self.paused = self._proc.returncode, None, False

    def _signal_group(self, sig: int) -> None:
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, sig)  # start_new_session made the pid the group id
        except (ProcessLookupError, PermissionError):
            pass


@atexit.register
def stop_all(timeout: float = 3.0) -> None:
    """Stop every process this interpreter started and still owns, newest first."""
    if os.getpid() != _OWNER_PID:  # a forked child inherits the registry, not the processes
        return
    with _lock:
        owned = list(_live.values())[::-1]
    for service in owned:
        try:
            service.stop(timeout=timeout)
        except Exception:  # one stubborn service must not keep the others running
            pass


def run_tag(proc: psutil.Process) -> tuple[str | None, str]:
    """(run id, owner pid) from the environment, or from the working directory (our temp dir) for
    servers such as redis-server that overwrite their environment when they set their title."""
    env = proc.environ()
    if "CHAOS_RUN_ID" in env:
        return env["CHAOS_RUN_ID"], env.get("CHAOS_OWNER_PID", "")
    cwd = Path(proc.cwd().removesuffix(" (deleted)"))
    if cwd.parent == TMP_ROOT and cwd.name.startswith(TMP_PREFIX) and cwd.name.count("-") >= 4:
        tag, owner, _service, _random = cwd.name.removeprefix(TMP_PREFIX).rsplit("-", 3)
        return tag, owner
    return None, ""


def reap_orphans(run_id: str | None = None) -> list[int]:
    """SIGKILL tagged processes whose owner died (or all of `run_id`'s), and remove the temp dirs
    of dead owners (or all of `run_id`'s). Returns the killed pids."""
    spare = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    victims = []
    for proc in psutil.process_iter():
        if proc.pid in spare:
            continue
        try:
            tag, owner = run_tag(proc)
        except (psutil.Error, OSError):
            continue
        if tag is None or not owner.isdigit() or (run_id is not None and tag != run_id):
            continue
        if run_id is None and psutil.pid_exists(int(owner)):
            continue
        victims.append(proc)
    for proc in victims:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(victims, timeout=5.0)
    for leftover in TMP_ROOT.glob(f"{TMP_PREFIX}*-*-*-*"):
        tag, owner, _service, _random = leftover.name.removeprefix(TMP_PREFIX).rsplit("-", 3)
        if run_id == tag or (run_id is None and owner.isdigit() and not psutil.pid_exists(int(owner))):
            shutil.rmtree(leftover, ignore_errors=True)
    return [proc.pid for proc in victims]
