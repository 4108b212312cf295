"""How the load runner lays out a distributed Locust swarm (`python -m harness.load.run --workers N`)."""

import pytest

from harness.load.run import parse_args
from harness.load.swarm import distributed_processes


def option(arguments: list[str], name: str) -> str:
    return arguments[arguments.index(name) + 1]


def test_one_process_by_default():
    assert parse_args(["--target", "sandbox"]).workers == 0


def test_negative_workers_are_refused(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--target", "sandbox", "--workers", "-1"])
    assert "--workers must be 0" in capsys.readouterr().err


def test_master_and_workers_stay_on_loopback(tmp_path):
    args = parse_args(["--target", "sandbox", "--workers", "3", "--users", "6", "--duration", "40"])
    master, *workers = distributed_processes("http://127.0.0.1:8000/api/v2", "token", args, tmp_path)
    assert len(workers) == 3
    assert option(master.arguments, "--master-bind-host") == "127.0.0.1"
    assert option(master.arguments, "--expect-workers") == "3"
    assert option(master.arguments, "-u") == "6"
    assert option(master.arguments, "--stop-after") == "40"  # not -t: that would quit before the workers report
    assert "-t" not in master.arguments
    port = option(master.arguments, "--master-bind-port")
    for worker in workers:
        assert option(worker.arguments, "--master-host") == "127.0.0.1"
        assert option(worker.arguments, "--master-port") == port
        assert "--counts-file" not in worker.arguments  # a worker's counts reach the master by message
    assert len({process.name for process in (master, *workers)}) == 4
    assert all(process.log_path.parent == tmp_path for process in (master, *workers))
