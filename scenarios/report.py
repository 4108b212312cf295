"""A run's report directory: report.md (verdicts + evidence), events.jsonl, snapshot.json, timeline.png."""

from __future__ import annotations

import json
from pathlib import Path

from harness.chaos import FAULTS
from harness.checks.ops import calls, job_of

STATUS_COLORS = {"CREATED": "#bdbdbd", "PENDING": "#9ecae1", "RETRY": "#6baed6", "STARTED": "#3182bd",
                 "CANCELING": "#fdae6b", "SUCCESS": "#31a354", "FAILURE": "#de2d26", "REVOKED": "#756bb1"}


def write(report, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    report.history.to_jsonl(directory / "events.jsonl")
    (directory / "snapshot.json").write_text(json.dumps(report.snapshot, indent=1, default=str))
    plot(report, directory / "timeline.png")
    if report.logs:
        (directory / "logs").mkdir(exist_ok=True)
        for name, text in report.logs.items():
            (directory / "logs" / f"{name}.log").write_text(text)
    (directory / "report.md").write_text(markdown(report))
    return directory


# --- report.md ----------------------------------------------------------------------------------------------


def outcome(report) -> str:
    scenario, composed = report.scenario, report.composed
    if report.fixes == "off" and not scenario.control:
        shown = "the incident shows" if report.incident_shown else "the incident did NOT show"
        return f"{composed.label} — {shown} ({', '.join(sorted(scenario.expect_off))} must fail)"
    if report.fixes == "on" and scenario.known_gap and composed.ok is not True:
        return f"{composed.label} — a known gap of the fixes: {scenario.known_gap}"
    return f"{composed.label} — " + ("every invariant holds" if composed.ok else "an invariant does not hold")


def markdown(report) -> str:
    from scenarios.runner import verb_log

    s = report.scenario
    lines = [f"# {s.name} — fixes {report.fixes}, seed {report.seed}", "", f"**{outcome(report)}**", "",
             s.doc.strip(), "", "| | |", "|---|---|",
             f"| kind | {'control (both modes pass)' if s.control else 'regression'}"
             f"{' — known gap of the fixes' if s.known_gap else ''} |",
             f"| duration | {report.seconds:.1f} s |",
             f"| settings | {', '.join(f'{k}={v}' for k, v in sorted(report.settings.items()) if not k.endswith('_URL'))} |",
             f"| replay | `{report.replay}` |", ""]
    if report.error:
        lines += ["## The scenario raised", "", "```", report.error.strip(), "```", ""]
    lines += ["## Verdicts", "", "| check | result | counts |", "|---|---|---|"]
    for v in report.verdicts:
        expected = " (expected)" if report.fixes == "off" and v.name in s.expect_off and v.ok is False else ""
        lines.append(f"| {v.name} | {v.label}{expected} | {', '.join(f'{k}={n}' for k, n in v.counts.items())} |")
    lines += ["", "## Evidence", ""]
    failing = [v for v in report.verdicts if v.ok is not True]
    if not failing:
        lines += ["Nothing to show: every check holds.", ""]
    for v in failing:
        lines += [f"### {v.name} — {v.label}", "", "```json"]
        lines += [json.dumps(sample, default=str) if not isinstance(sample, str) else sample for sample in v.samples]
        lines += ["```", ""]
    lines += ["## Jobs at the end", "", "| job | status | attempt | images | processed | results | stream | messages "
              "| pending | in flight | ERROR log |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for job in report.snapshot.get("jobs", {}).values():
        q = job.get("queue")
        nats = ("NATS down", "", "", "") if q is None else (
            "yes" if q["stream_exists"] else "gone", q["messages"], q["num_pending"], q["num_ack_pending"])
        errors = " / ".join(line["message"][:160] for line in job["logs"] if line["level"] == "ERROR") or "—"
        lines.append(f"| {job['id']} | {job['status']} | {job['attempt']} | {job['images']} | "
                     f"{job['progress']['processed']} | {job['results']['rows']} | {' | '.join(map(str, nats))} | {errors} |")
    lines += ["", "## Verb log", ""] + [f"1. {step}" for step in verb_log(report.history)]
    lines += ["", "![timeline](timeline.png)", "",
              "Files: `events.jsonl` (every op of the run: workers, client, nemesis, samples), "
              "`snapshot.json` (what the checkers judged), `logs/` (the last lines of every server's log).", ""]
    return "\n".join(lines)


# --- timeline.png -------------------------------------------------------------------------------------------


def fault_label(verb: str, value: dict) -> str:
    """`nats-restart --wipe`, `nats-pause 2.5s`, `revoke job 3`, `reserve-and-vanish job 2 --repeat`."""
    parts = [verb]
    if isinstance(value.get("job"), int):
        parts.append(f"job {value['job']}")
    if value.get("seconds") is not None:
        parts.append(f"{float(value['seconds']):g}s")
    parts.extend(f"--{flag}" for flag in ("wipe", "repeat") if value.get(flag) is True)
    return " ".join(parts)


def stagger(items: list[tuple[float, str]], span: float, per_char: float = 0.0072) -> list[int]:
    """A row per label so that no two labels in one row overlap: (x, text) → row, 0 first. `per_char` is a
    character's width as a fraction of the axis at font size 8."""
    ends: list[float] = []  # per row: where its last label ends
    rows = []
    for x, text in items:
        width = span * per_char * (len(text) + 2)
        row = next((i for i, end in enumerate(ends) if end <= x), len(ends))
        if row == len(ends):
            ends.append(0.0)
        ends[row] = x + width
        rows.append(row)
    return rows


def fault_spans(ops, t0: float) -> list[tuple[str, float, float, float | None]]:
    """(label, called, applied, healed) per injected fault: from the inject call to its answer, then to the
    end of its heal; healed None for a one-shot fault."""
    spans, open_, called = [], {}, {}
    for op in ops:
        if op.process != "nemesis":
            continue
        verb = op.value["fault"]
        if op.f == "inject" and op.type == "invoke":
            called[verb] = op.time - t0
        elif op.f == "inject" and op.type == "ok":
            label = fault_label(verb, op.value)
            start, applied = called.pop(verb, op.time - t0), op.time - t0
            if (verb in FAULTS and FAULTS[verb].one_shot) or op.value.get("repeat") is False:
                spans.append((label, start, applied, None))
            else:
                open_.setdefault(verb, []).append((label, start, applied))
        elif op.f == "heal" and op.type == "ok" and open_.get(verb):
            label, start, applied = open_[verb].pop()
            spans.append((label, start, applied, op.time - t0))
    return spans


def plot(report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    ops = report.history.ops
    if not ops:
        return
    t0 = ops[0].time
    jobs = sorted(report.snapshot.get("jobs", {}).values(), key=lambda job: job["id"])
    samples = {job["id"]: [op for op in ops if op.f == "sample" and op.value["job"] == job["id"]] for job in jobs}
    end = max(op.time for op in ops) - t0
    fig, (ax_status, ax_nats, ax_progress) = plt.subplots(
        3, 1, figsize=(12, 8.5), sharex=True, gridspec_kw={"height_ratios": [1 + 0.25 * len(jobs), 2.2, 1.6]})
    fig.suptitle(f"{report.scenario.name} — fixes {report.fixes}, seed {report.seed}: {report.composed.label}",
                 fontsize=13, fontweight="bold")

    # job status over time
    seen = set()
    for row, job in enumerate(jobs):
        changes = [(op.time - t0, op.value["status"]) for op in ops if op.f == "status" and op.value["job"] == job["id"]]
        for (start, status), nxt in zip(changes, [*changes[1:], (end + 0.5, None)], strict=True):  # the last one to the edge
            ax_status.barh(row, nxt[0] - start, left=start, height=0.6, color=STATUS_COLORS.get(status, "#000"),
                           zorder=2)
            seen.add(status)
            if nxt[0] - start > (end + 0.5) * 0.011 * (len(status) + 1):
                ax_status.text(start + 0.1, row, status, va="center", fontsize=8, color="white", fontweight="bold",
                               zorder=3)
    labels = [f"job {job['id']}" for job in jobs]
    errors = [(op.time - t0, op.value["status"]) for op in ops if op.type == "fail" and isinstance(op.value, dict)
              and isinstance(op.value.get("status"), int) and op.value["status"] >= 500]
    if errors:  # one more row: the server errors any client saw
        row = len(jobs)
        for status, style in ((503, dict(marker="o", color="#969696", s=14, label="503 (retry later)")),
                              (None, dict(marker="x", color="#de2d26", s=30, label="5xx server error"))):
            times = [t for t, code in errors if (code == 503) == (status == 503)]
            if times:
                ax_status.scatter(times, [row] * len(times), zorder=4, **style)
        labels.append("HTTP 5xx")
    ax_status.set_yticks(range(len(labels)), labels)
    ax_status.set_ylim(-0.6, len(labels) - 0.4)
    ax_status.invert_yaxis()
    ax_status.set_title("job status", loc="left", fontsize=10)
    handles, _ = ax_status.get_legend_handles_labels()
    ax_status.legend(handles=[Patch(color=STATUS_COLORS[s], label=s) for s in STATUS_COLORS if s in seen] + handles,
                     loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)

    # NATS counts
    styles = {"num_pending": ("--", "#08519c", "pending (not yet delivered)"),
              "num_ack_pending": ("-", "#e6550d", "in flight (ack pending)"),
              "dead": (":", "#de2d26", "dead (max_deliver advisories)")}
    nan, palette = float("nan"), plt.get_cmap("tab10").colors
    for index, job in enumerate(jobs):
        points = samples[job["id"]]
        times = [op.time - t0 for op in points]
        many = len(jobs) > 1  # then one colour per job, one line style per count
        suffix = f" (job {job['id']})" if many else ""
        queue = [op.value["queue"] or {} for op in points]
        messages = [q.get("messages", nan) if q.get("stream_exists") else (0 if q else nan) for q in queue]
        ax_nats.fill_between(times, messages, step="post", color=palette[index % 10] if many else "#c6dbef",
                             alpha=0.15 if many else 0.8, linewidth=0, zorder=1, label="stream messages" + suffix)
        for key, (style, color, label) in styles.items():
            values = [op.value["dead"] for op in points] if key == "dead" else [q.get(key, nan) for q in queue]
            ax_nats.step(times, values, style if many or key != "dead" else "-", where="post",
                         color=palette[index % 10] if many else color, label=label + suffix,
                         linewidth=2.4 if key == "dead" else 1.8, zorder=3)
        down = [op.time - t0 for op in points if op.value["queue"] is None]
        for t in down:
            ax_nats.axvspan(t - 0.13, t + 0.13, color="#999", alpha=0.25, linewidth=0)
        if down and not any(line.get_label() == "NATS not answering" for line in ax_nats.get_lines()):
            ax_nats.plot([], [], color="#999", alpha=0.5, linewidth=6, label="NATS not answering")
        ax_nats.axhline(job["images"], color="#555", linewidth=0.8, linestyle="-.")
        ax_nats.text(0, job["images"], f" {job['images']} images", fontsize=8, va="bottom", color="#555")
    ax_nats.set_title("NATS: the job's stream and consumer", loc="left", fontsize=10)
    ax_nats.set_ylabel("tasks")
    ax_nats.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)

    # progress: database vs Redis
    for index, job in enumerate(jobs):
        points = samples[job["id"]]
        times = [op.time - t0 for op in points]
        many = len(jobs) > 1
        suffix = f" (job {job['id']})" if many else ""
        ax_progress.step(times, [op.value["processed"] for op in points], "-", where="post",
                         color=palette[index % 10] if many else "#31a354", label="processed (database)" + suffix,
                         linewidth=1.6)
        redis = [op.value["redis"]["processed"] if op.value["redis"] and op.value["redis"]["exists"] else float("nan")
                 for op in points]
        ax_progress.step(times, redis, "--", where="post", color=palette[index % 10] if many else "#a1d99b",
                         label="processed (Redis)" + suffix, linewidth=1.6, alpha=0.6 if many else 1.0)
    most = max([job["images"] for job in jobs] + [1])
    for index, job in enumerate(jobs):  # what the workers were told was accepted, whether or not it was stored
        times, seen = [], set()
        for invoke, outcome in calls(ops, "post"):
            if job_of(invoke) != job["id"] or outcome.type != "ok":
                continue
            refused = outcome.value.get("refused") or {}
            seen.update(s.split(".")[5] for s in invoke.value.get("reply_subjects") or []
                        if s not in refused and s.count(".") >= 8)
            times.append((outcome.time - t0, len(seen)))
        if times:
            many = len(jobs) > 1
            most = max(most, times[-1][1])
            ax_progress.step([0.0] + [t for t, _ in times] + [end], [0] + [n for _, n in times] + [times[-1][1]], ":",
                             where="post",
                             color=palette[index % 10] if many else "#756bb1", linewidth=1.8,
                             label="results accepted (tasks)" + (f" (job {job['id']})" if many else ""))
    ax_progress.set_ylim(0, most * 1.08)
    ax_nats.set_ylim(bottom=0)
    ax_progress.set_title("progress", loc="left", fontsize=10)
    ax_progress.set_ylabel("images")
    ax_progress.set_xlabel("seconds since the run began")
    ax_progress.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False)

    # faults, client actions and the settle phase on every panel
    for _label, start, applied, stop in fault_spans(ops, t0):
        for ax in (ax_status, ax_nats, ax_progress):
            if stop is None:  # one-shot: being applied from the call to its answer
                ax.axvspan(start, applied, color="#fdae6b", alpha=0.3, linewidth=0, zorder=0)
                ax.axvline(applied, color="#d95f02", linewidth=1.5)
            else:
                ax.axvspan(start, stop, color="#fdae6b", alpha=0.3, linewidth=0, zorder=0)
    faults = sorted((start, f"⚡ {label}") for label, start, _, _ in fault_spans(ops, t0))
    rows = stagger(faults, end + 0.5)
    if rows:  # room below the last row of bars for the label rows (the axis is inverted)
        ax_status.set_ylim(len(labels) - 0.4 + 0.25 * max(rows), -0.6)
    for (start, text), row in zip(faults, rows, strict=True):  # rows upwards from the bottom
        ax_status.annotate(text, (start, 0), xycoords=("data", "axes fraction"), xytext=(2, 2 + 12 * row),
                           textcoords="offset points", fontsize=8, color="#a63603", va="bottom", zorder=5,
                           annotation_clip=False, bbox=dict(boxstyle="square,pad=0.1", fc="white", ec="none",
                                                            alpha=0.75))
    actions: list[tuple[float, str]] = []  # Starts and cancels close together share one label: "start 3, 4, 5"
    for op in ops:
        if op.process not in ("client", "starter-0", "starter-1") or op.type != "invoke" or op.f not in (
                "start", "cancel"):
            continue
        t, job = op.time - t0, job_of(op)
        ax_status.axvline(t, color="#333", linewidth=0.8, linestyle=":")
        if actions and actions[-1][1].startswith(op.f) and t - actions[-1][0] < 0.03 * (end + 0.5):
            if job is not None and not actions[-1][1].endswith(f" {job}"):
                actions[-1] = (actions[-1][0], f"{actions[-1][1]}, {job}")
            continue
        actions.append((t, f"{op.f} {job if job is not None else ''}".strip()))
    for (t, text), row in zip(actions, stagger(actions, end + 0.5, per_char=0.0065), strict=True):
        ax_status.annotate(text, (t, 1), xycoords=("data", "axes fraction"), xytext=(2, -10 - 9 * row),
                           textcoords="offset points", fontsize=7, color="#333", zorder=5,
                           bbox=dict(boxstyle="square,pad=0.05", fc="white", ec="none", alpha=0.6))
    settle = [op for op in ops if op.process == "runner" and op.f == "settle" and op.type == "invoke"]
    if settle:
        start, bound = settle[-1].time - t0, settle[-1].value["bound"]
        reached = start + bound <= end + 0.5
        for ax in (ax_status, ax_nats, ax_progress):
            ax.axvline(start, color="#000", linewidth=1, linestyle="--")
            if reached:
                ax.axvline(start + bound, color="#000", linewidth=1, linestyle=(0, (1, 3)))
        late = start > 0.7 * (end + 0.5)
        ax_progress.annotate("healed → settle" + ("" if reached else f" (bound {bound:.0f}s)"), (start, 1),
                             xycoords=("data", "axes fraction"), xytext=(-3 if late else 2, -10),
                             textcoords="offset points", fontsize=7, ha="right" if late else "left")
        if reached:
            ax_progress.annotate(f"bound {bound:.0f}s", (start + bound, 1), xycoords=("data", "axes fraction"),
                                 xytext=(-3, -10), textcoords="offset points", fontsize=7, ha="right")
    for ax in (ax_status, ax_nats, ax_progress):
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlim(0, end + 0.5)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
