"""`chaos`: start the real stack, poke jobs and workers, reproduce incidents by hand."""

from __future__ import annotations

import json
import signal
import threading
import time

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness import state
from harness.client import SandboxClient

app = typer.Typer(help="Chaos & regression harness for NATS-backed async job systems.", no_args_is_help=True)
job_app = typer.Typer(help="Create and inspect jobs on the running stack.", no_args_is_help=True)
app.add_typer(job_app, name="job")
console = Console()
NATS_HELP = ("single (one nats-server), cluster3 (three clustered nodes on loopback, streams at replicas 3; "
             "the cluster faults need it) or cluster3-netns (the same, each node in a network namespace of the "
             "run's own: partitions are black holes; root only). Default: CHAOS_NATS, else single.")


def stack_settings(fixes: str, ack_wait: float, max_deliver: int, sweep_interval: float, retention: str) -> dict:
    from harness.settings import RunSettings

    if fixes not in ("on", "off"):
        raise typer.BadParameter("--fixes must be on or off")
    return RunSettings.of(fixes=fixes, ack_wait=ack_wait, max_deliver=max_deliver, sweep_interval=sweep_interval,
                          retention=retention).env()


@app.command()
def up(
    fixes: str = typer.Option("on", help="Switch every fix on or off."),
    ack_wait: float = typer.Option(30.0, help="NATS ack_wait (seconds) for new job consumers."),
    max_deliver: int = typer.Option(3, help="NATS max_deliver for new job consumers."),
    sweep_interval: float = typer.Option(5.0, help="Seconds between two reaper sweeps (Celery beat)."),
    retention: str = typer.Option("limits", help="Job stream retention: limits (Antenna) or workqueue."),
    web_workers: int = typer.Option(3, help="Web server worker processes."),
    backend: str = typer.Option(None, help="Where NATS, Redis and PostgreSQL run: process (local servers) "
                                           "or docker (containers). Default: CHAOS_BACKEND, else process."),
    target: str = typer.Option(None, envvar="CHAOS_TARGET",
                               help="sandbox (default) or antenna:PATH (an Antenna checkout: its backend)."),
    nats: str = typer.Option(None, "--nats", help=NATS_HELP),
):
    """Start NATS, Redis, PostgreSQL, the sandbox web app, Celery worker and beat; serve until Ctrl-C."""
    from harness.infra import Stack
    from harness.infra.containers import backend as chosen_backend
    from harness.infra.containers import docker_problem

    settings = stack_settings(fixes, ack_wait, max_deliver, sweep_interval, retention)
    spec = _target(target)
    topology = _nats(nats, spec)
    try:
        backend = chosen_backend(backend)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--backend") from None
    if backend == "docker" and (problem := docker_problem()) is not None:
        console.print(f"[red]the docker backend needs a Docker engine: {problem}[/]\n"
                      "Start one, or use --backend process.")
        raise typer.Exit(2)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: a background job may inherit it ignored
        signal.signal(sig, lambda *_: stop.set())
    began = time.monotonic()
    with console.status(f"starting the stack ({spec})…"):
        if spec.kind == "sandbox":
            stack = Stack(settings=settings, web_workers=web_workers, backend=backend, nats=topology)
        else:
            stack = spec.build(settings)
        stack.start()
    try:
        info = state.describe(stack, settings)
        state.write(info)
        table = Table(title=f"stack up in {time.monotonic() - began:.1f}s ({spec}, fixes {fixes}, {backend})",
                      show_header=False)
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")  # URLs are copied from here: never cut them short
        for key in ("api_url", "token", "nats_url", "redis_url", "database_url", "sandbox_database_url"):
            table.add_row(key, info[key])
        table.add_row("state file", str(state.path()))
        console.print(table)
        console.print("Ctrl-C stops everything.")
        from harness import control

        try:
            control.serve(stack, stop)  # `chaos fault …` from another terminal acts through this
        except KeyboardInterrupt:
            pass
    finally:
        with console.status("stopping…"):
            stack.stop()
            state.remove()
        console.print("stack stopped; nothing left running.")


@app.command()
def demo(images: int = typer.Option(200, help="Images of the job that is revoked and started again.")):
    """Reproduce both incidents with the fixes off, then run the same steps with them on."""
    from harness.demo import demo as run_demo

    outcomes = run_demo(images=images, console=console)
    cured = outcomes["on"].dead_job.startswith("FAILURE") and "(0 duplicates)" in outcomes["on"].duplicates
    shown = outcomes["off"].dead_job.startswith("STARTED") and "(0 duplicates)" not in outcomes["off"].duplicates
    if not (cured and shown):
        console.print("[red]unexpected outcome: see the table above[/]")
        raise typer.Exit(1)


@app.command()
def prepare(target: str = typer.Option(..., envvar="CHAOS_TARGET", help="antenna:PATH (an Antenna checkout).")):
    """Build what a target needs before its first run (Antenna: its own virtualenv, ~3 minutes once)."""
    spec = _target(target)
    if spec.kind == "sandbox":
        console.print("the sandbox needs nothing beyond this project's install")
        return
    from harness.targets.antenna.venv import antenna_venv

    began = time.monotonic()
    venv = antenna_venv(spec.checkout, log=console.print)
    console.print(f"Antenna's virtualenv is ready ({time.monotonic() - began:.0f}s): {venv}")


@app.command("reap-orphans")
def reap_orphans_command(run_id: str = typer.Option(None, help="Kill every process of this run id instead.")):
    """Kill harness processes (servers, web, Celery) whose owner died, and remove their temp dirs."""
    from harness.infra.base import reap_orphans

    killed = reap_orphans(run_id)
    console.print(f"killed {len(killed)} orphaned process(es)" + (f": {killed}" if killed else ""))


def _nats(value: str | None, spec) -> str:
    """The NATS topology of this command's stacks, also set as CHAOS_NATS for everything it starts."""
    import os

    from harness.infra.stack import nats_topology

    try:
        topology = nats_topology(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--nats") from None
    if topology != "single" and spec.kind != "sandbox":
        raise typer.BadParameter("a NATS cluster runs under the sandbox target only", param_hint="--nats")
    if topology == "cluster3-netns":
        from harness.infra import netns

        ok, reason = netns.available()
        if not ok:
            raise typer.BadParameter(f"cluster3-netns is not available here: {reason}", param_hint="--nats")
    if value is not None:
        os.environ["CHAOS_NATS"] = topology
    return topology


def _target(text: str | None):
    from harness.targets import TargetSpec

    try:
        return TargetSpec.parse(text or "sandbox")
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--target") from None


def _client() -> SandboxClient:
    info = state.read()
    return SandboxClient(info["api_url"], info["token"])


@job_app.command("create")
def job_create(
    images: int = typer.Option(..., help="Number of images (one NATS task each)."),
    pipeline: str = typer.Option("moth-detector", help="Pipeline slug."),
    start: bool = typer.Option(False, "--start", help="Start the job right away."),
    as_json: bool = typer.Option(False, "--json", help="Print the job as JSON."),
):
    """Create an async_api job with N images."""
    with _client() as client:
        job = client.create_job(images=images, pipeline=pipeline, start=start)
    if as_json:
        typer.echo(json.dumps(job))
    else:
        console.print(f"job [bold]{job['id']}[/] created: {images} images, pipeline {pipeline}, status {job['status']}")


@job_app.command("show")
def job_show(job_id: int, as_json: bool = typer.Option(False, "--json", help="Print the job as JSON.")):
    """Status, progress, log lines and NATS stream/consumer counts of a job."""
    with _client() as client:
        job = client.job(job_id, queue=True)
    if as_json:
        typer.echo(json.dumps(job))
        return
    console.print(f"[bold]job {job['id']}[/] {job['status']}  attempt {job['attempt']}  "
                  f"progress {job['progress']['summary']['progress']:.0%}")
    stages = Table("stage", "status", "params")
    for stage in job["progress"]["stages"]:
        stages.add_row(stage["key"], stage["status"], ", ".join(f"{p['key']}={p['value']}" for p in stage["params"]))
    console.print(stages)
    queue = job.get("queue")
    if queue is None:
        console.print("NATS: unreachable")
    else:
        console.print(
            "NATS: " + ("stream present" if queue["stream_exists"] else "[red]stream missing[/]")
            + f", messages={queue['messages']} pending={queue['num_pending']} ack_pending={queue['num_ack_pending']}"
            f" redelivered={queue['num_redelivered']} waiting={queue['num_waiting']}"
        )
    for line in job.get("logs", []):
        style = {"ERROR": "red", "WARNING": "yellow"}.get(line["level"], "default")
        console.print(Text.assemble(f"  {line['created_at'][11:19]} ", (f"{line['level']:7}", style),
                                    f" {line['message']}"))


@app.command()
def worker(
    kind: str = typer.Option("healthy", help="healthy | crash-after-reserve | slow | poison | duplicate"),
    count: int = typer.Option(1, help="Workers to run concurrently."),
    pipeline: list[str] = typer.Option(["moth-detector"], help="Pipeline slugs to work on."),
    batch_size: int = typer.Option(16, help="Tasks per reservation."),
    hold: float = typer.Option(None, help="Seconds a slow worker holds a batch (default: 2 × ack_wait)."),
    heartbeat: bool = typer.Option(False, help="Slow workers send in_progress while they hold a batch."),
    until_idle: bool = typer.Option(False, "--until-idle", help="Stop when no job has work left."),
    duration: float = typer.Option(None, help="Stop after this many seconds (default: until Ctrl-C)."),
):
    """Run simulated workers against the stack started by `chaos up`."""
    import asyncio

    from harness.settings import RunSettings
    from harness.workers import KINDS, run_workers

    if kind not in KINDS:
        raise typer.BadParameter(f"--kind must be one of {', '.join(KINDS)}")
    info = state.read()
    ack_wait = RunSettings.of(info["settings"]).ack_wait
    began = time.monotonic()
    with console.status(f"{count} {kind} worker(s) at work…"):
        try:
            summary = asyncio.run(run_workers(
                info["api_url"], info["token"], kind=kind, count=count, pipelines=pipeline, batch_size=batch_size,
                hold=hold if hold is not None else 2 * ack_wait, heartbeat=heartbeat, until_idle=until_idle,
                duration=duration, poll_interval=1.0, idle_rounds=2))
        except KeyboardInterrupt:
            console.print("stopped")
            return
    console.print(f"{count} {kind} worker(s), {time.monotonic() - began:.1f}s: reserved {summary.reserved} tasks "
                  f"in {summary.batches} batches, posted {summary.posted} results; per-task status "
                  f"{dict(summary.statuses)}; HTTP errors {dict(summary.http_errors)}"
                  + ("; crashed as told" if summary.crashed else ""))


def main():  # pragma: no cover
    app()


# --- scenarios, faults and soak (the Jepsen-style harness) ------------------------------------------------


@app.command("list")
def list_scenarios():
    """The incident scenarios: what each breaks and which checks must fail with the fixes off."""
    from rich.markup import escape

    from scenarios import all_scenarios
    from scenarios.cluster import cluster_scenarios

    table = Table("scenario", "kind", "must fail with fixes off", "Antenna HEAD (fixes off)", show_lines=True)
    cluster = cluster_scenarios()
    for scenario in {**all_scenarios(), **cluster}.values():
        settings = escape("".join(f" [{k}={v}]" for k, v in scenario.settings.items()))
        if "antenna" not in scenario.targets:
            head = f"not run: {scenario.targets_why}"
        else:
            head = scenario.on_head or scenario.head_unjudged and f"not judged: {scenario.head_unjudged}" or "as on the sandbox"
        table.add_row(f"[bold]{scenario.name}[/]{settings}\n[dim]{scenario.title}[/]",
                      ("control" if scenario.control else "regression") + ("\nknown gap" if scenario.known_gap else "")
                      + ("" if "sandbox" in scenario.targets else "\nAntenna only")
                      + ("\nneeds --nats cluster3" if scenario.name in cluster else ""),
                      "\n".join(sorted(scenario.expect_off)) or "— (passes in both modes)", escape(head))
    console.print(table)


def _verdict_table(report) -> Table:
    style = {True: "green", False: "red", None: "yellow"}
    table = Table(title=f"{report.scenario.name} — fixes {report.fixes}, seed {report.seed} ({report.seconds:.0f}s)")
    table.add_column("check")
    table.add_column("result")
    table.add_column("evidence")
    for v in report.verdicts:
        expected = " (expected)" if report.fixes == "off" and v.name in report.scenario.expect_off and v.ok is False else ""
        evidence = json.dumps(v.samples[0], default=str)[:140] if v.samples else ", ".join(
            f"{k}={n}" for k, n in v.counts.items())
        table.add_row(v.name, Text(v.label + expected, style=style[v.ok]), evidence)
    return table


def _live_view(state: dict):
    from rich.console import Group

    ctx = state.get("ctx")
    jobs = Table("job", "status", "attempt", "processed", "messages", "pending", "in flight", "dead", box=None)
    for job, sample in sorted((ctx.sampler.latest if ctx and ctx.sampler else {}).items()):
        queue = sample["queue"] or {}
        jobs.add_row(str(job), sample["status"], str(sample["attempt"]),
                     f"{sample['processed']}/{sample['total_images']}", *(str(queue.get(k, "—")) for k in (
                         "messages", "num_pending", "num_ack_pending")), str(sample["dead"]))
    spent = time.monotonic() - state["began"]
    return Group(Text(f"[{spent:5.1f}s] {state['note']}", style="bold"), jobs)


@app.command("run")
def run_scenario(
    name: str = typer.Argument(..., help="Scenario name or its sNN prefix (see `chaos list`), or soak-<seed>."),
    fixes: str = typer.Option("on", help="on | off"),
    seed: int = typer.Option(0, help="Seed for everything the scenario draws at random."),
    report: str = typer.Option(None, help="Report directory (default: reports/<scenario>-<fixes>-<seed>)."),
    target: str = typer.Option(None, envvar="CHAOS_TARGET",
                               help="sandbox (default) or antenna:PATH (an Antenna checkout: its backend)."),
    nats: str = typer.Option(None, "--nats", help=NATS_HELP),
):
    """Run one scenario on a fresh stack; show it live, then the verdicts; write the report directory."""
    from pathlib import Path

    from rich.live import Live

    from scenarios import get
    from scenarios.runner import run_fresh

    if fixes not in ("on", "off"):
        raise typer.BadParameter("--fixes must be on or off")
    spec = _target(target)
    topology = _nats(nats, spec)
    try:
        scenario = get(name)
    except KeyError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if spec.kind not in scenario.targets:
        raise typer.BadParameter(f"{scenario.name} does not run on {spec.kind}: {scenario.targets_why}",
                                 param_hint="--target")
    from harness.infra.stack import CLUSTER_TOPOLOGIES
    from scenarios.cluster import cluster_scenarios

    if scenario.name in cluster_scenarios() and topology not in CLUSTER_TOPOLOGIES:
        raise typer.BadParameter(f"{scenario.name} needs the 3-node NATS cluster: add --nats cluster3",
                                 param_hint="--nats")
    where = ("" if spec.kind == "sandbox" else f"-{spec.kind}") + ("" if topology == "single" else f"-{topology}")
    directory = Path(report or f"reports/{scenario.name}{where}-{fixes}-{seed}")
    state = {"note": "starting", "ctx": None, "began": time.monotonic()}
    with Live(get_renderable=lambda: _live_view(state), console=console, refresh_per_second=4, transient=True):
        outcome = run_fresh(scenario, fixes, seed, directory, on_note=lambda text: state.update(note=text),
                            on_start=lambda ctx: state.update(ctx=ctx), target=spec)
    console.print(_verdict_table(outcome))
    from scenarios.report import outcome as describe

    console.print(f"[bold]{describe(outcome)}[/]  report: {outcome.report_dir / 'report.md'}")
    if not outcome.as_expected:
        raise typer.Exit(1)


@app.command("fault")
def fault_command(
    verb: str = typer.Argument(..., help="A fault verb (see --help of `chaos fault list`)."),
    arg: str = typer.Argument(None, help="JOB for job faults, SECONDS for nats-pause and beat-down."),
    wipe: bool = typer.Option(False, "--wipe", help="nats-restart: delete the JetStream store."),
    batch: int = typer.Option(None, help="reserve-and-vanish / worker-kill: tasks to take."),
    repeat: bool = typer.Option(False, "--repeat", help="reserve-and-vanish: keep taking tasks (needs --for)."),
    hold: float = typer.Option(None, "--for", help="Heal after this many seconds (kill/pause faults)."),
    tail: int = typer.Option(None, "--tail", help="nats-lose-writes JOB: how many of its last tasks the crash loses."),
    heal: bool = typer.Option(False, "--heal", help="Only heal: start again what this verb stops."),
):
    """Inject one fault into the stack of a running `chaos up` (`chaos fault list` shows the verbs)."""
    from harness.chaos import FAULTS, Nemesis, RemoteTarget
    from harness.history import History

    if verb == "list":
        table = Table("verb", "argument", "what it does")
        for name, fault in FAULTS.items():
            table.add_row(name, (fault.positional or "").upper(), fault.help)
        console.print(table)
        return
    if verb not in FAULTS:
        raise typer.BadParameter(f"unknown fault {verb!r}; known: {', '.join(FAULTS)}")
    fault, history = FAULTS[verb], History()
    target = RemoteTarget(state.read(), history)
    if heal:
        fault().heal(target)
        console.print(f"{verb}: healed")
        return
    if fault.positional and arg is None and not fault.positional_optional:
        raise typer.BadParameter(f"{verb} needs {fault.positional.upper()}")
    args = fault.positional_args(arg)
    if wipe:
        args["wipe"] = True
    if batch is not None:
        args["batch"] = batch
    if tail is not None:
        args["tail"] = tail
    if repeat:
        if hold is None:
            raise typer.BadParameter("--repeat needs --for SECONDS: the vanishing worker lives in this process")
        args["repeat"] = True
    nemesis = Nemesis(target)

    def interrupted(*_):
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: a background job may inherit it ignored
        signal.signal(sig, interrupted)
    try:
        with console.status(f"{verb} {args or ''}…"):
            nemesis.inject(verb, **args)
            if hold is not None:
                time.sleep(hold)
            if hold is not None or args.get("repeat"):
                nemesis.heal_all()
    except KeyboardInterrupt:  # a timed or held fault must not outlive this command: heal it now
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        errors = nemesis.heal_all()
        console.print(f"{verb}: interrupted, healed" + (f" (errors: {errors})" if errors else ""))
        raise typer.Exit(130) from None
    for op in history.ops:
        if op.process == "nemesis" and op.type != "invoke":
            console.print(f"{op.f} {op.type}: {json.dumps(op.value, default=str)}")
    if hold is None and not (fault.one_shot or fault.timed or fault.positional == "job"):
        console.print(f"still in force: heal with `chaos fault {verb} --heal`")


@app.command("soak")
def soak(
    schedules: int = typer.Option(10, help="How many random schedules to run."),
    seed: int = typer.Option(0, help="Seed of the whole soak: the schedules are derived from it."),
    fixes: str = typer.Option("on", help="on | off"),
    parallel: int = typer.Option(1, min=1, help="Stacks running schedules at once (each a whole stack: on two "
                                                "cores, 2 at most)."),
    report: str = typer.Option("reports/soak", help="Where the reports of violating schedules go."),
    target: str = typer.Option(None, envvar="CHAOS_TARGET",
                               help="sandbox (default) or antenna:PATH (an Antenna checkout: its backend)."),
    nats: str = typer.Option(None, "--nats", help=NATS_HELP + " On cluster3 the schedules draw the cluster "
                                                             "faults too."),
):
    """Random fault schedules over random jobs, on one stack or N at once; every invariant must hold. Prints a
    line per schedule as it ends, then a summary with the replay command of every violation."""
    from pathlib import Path

    from harness.settings import RunSettings
    from scenarios.report import write
    from scenarios.soak import play, seeds

    if fixes not in ("on", "off"):
        raise typer.BadParameter("--fixes must be on or off")
    spec = _target(target)
    topology = _nats(nats, spec)  # in the environment: every stack of this run, and which faults schedules draw
    where = ("" if spec.kind == "sandbox" else f" --target {spec}") + ("" if topology == "single" else f" --nats {topology}")
    began = time.monotonic()

    def replay(played) -> str:
        return f"chaos run soak-{played.seed} --fixes {fixes} --seed {played.seed}{where}"

    def on_played(played) -> None:
        head = f"[{played.index}/{schedules}] seed {played.seed} ({played.report.seconds:.0f}s, lane {played.lane})"
        if played.held:
            console.print(f"[green]pass[/] {head}: {played.steps}")
            return
        directory = write(played.report, Path(report) / played.report.scenario.name)
        failed = ", ".join(v.name for v in played.report.verdicts if v.ok is not True)
        console.print(f"[red]{played.report.composed.label}[/] {head} ({failed}): {played.steps}\n"
                      f"  replay: [bold]{replay(played)}[/]  report: {directory}")

    def on_note(lane: int, text: str) -> None:
        if not text.startswith("schedule "):  # a schedule's own steps would drown the per-schedule lines
            console.print(f"[dim]lane {lane}: {text}[/]")

    stop = threading.Event()  # Ctrl-C or SIGTERM: each lane ends its schedule, stops its stack; the summary follows
    for sig in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: a background job may inherit it ignored
        signal.signal(sig, lambda *_: stop.set())
    played = play(seeds(seed, schedules), lambda: spec.build(RunSettings.of(fixes=fixes)), fixes, lanes=parallel,
                  on_played=on_played, on_note=on_note, stop=stop)
    elapsed = time.monotonic() - began
    violations = sorted((p for p in played if not p.held), key=lambda p: p.index)
    per_schedule = sum(p.report.seconds for p in played) / max(len(played), 1)
    console.print(f"{len(played) - len(violations)} of {len(played)} schedules held every invariant"
                  f"{'' if len(played) == schedules else f' ({schedules - len(played)} not run)'} "
                  f"(soak seed {seed}, fixes {fixes}, {parallel} stack(s), {elapsed:.0f}s; {per_schedule:.1f}s per "
                  f"schedule, {elapsed / max(len(played), 1):.1f}s of wall clock each).")
    for played_one in violations:
        failed = ", ".join(v.name for v in played_one.report.verdicts if v.ok is not True)
        console.print(f"  seed {played_one.seed} ({failed}): {replay(played_one)}")
    if violations or len(played) < schedules:
        raise typer.Exit(1)
