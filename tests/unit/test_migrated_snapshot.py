"""A migrated snapshot saved by several stacks at once (soak lanes are threads of one process): each stages its
own copy, one wins the rename, none fails."""

import threading

from harness.infra import snapshot
from harness.infra.snapshot import MigratedSnapshot


def test_threads_saving_one_snapshot_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshot, "TMP_ROOT", tmp_path)
    pgdata = tmp_path / "cluster"
    (pgdata / "pg_wal").mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("18")
    for n in range(200):
        (pgdata / "pg_wal" / f"{n:024d}").write_bytes(b"x" * 1000)
    errors = []

    def save():
        try:
            MigratedSnapshot("k").save(pgdata, "token")
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=save) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert MigratedSnapshot("k").token() == "token"
    assert not list(tmp_path.glob("*.tmp"))
