"""Each fix against the real stack: with it off the incident shows, with it on it does not.

Timeouts are compressed (ack_wait 1 s, max_deliver 3, sweep every 1 s) by the plugin's defaults.
"""

import threading
import time

import pytest

from harness.waiting import poll_until
from tests.integration.wire import api_client, drain, post, reserve, started_job, success

pytestmark = pytest.mark.integration

ON, OFF = {"fixes": "on"}, {"fixes": "off"}
INLINE_ONLY = {"fixes": "on", "FIX_SWEEP": "0"}  # the /tasks/ check alone, no beat sweep


def fixes_off_and_on(**settings):
    """Run the test once per mode; `sandbox` then runs on a stack with those fixes (and settings)."""
    return pytest.mark.parametrize("fixes", [
        pytest.param(mode, marks=pytest.mark.stack(fixes=mode, **settings), id=f"fixes-{mode}") for mode in ("off", "on")
    ])


def stays(check, seconds: float, interval: float = 0.2) -> bool:
    """True if `check()` holds at every look for `seconds` (an observation window, not a wait)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not check():
            return False
        time.sleep(interval)
    return True


def window(sandbox) -> float:
    """Long enough for every task to exhaust max_deliver and for two sweeps to look."""
    s = sandbox.settings
    return float(s["CHAOS_ACK_WAIT"]) * int(s["CHAOS_MAX_DELIVER"]) + 2 * float(s["CHAOS_SWEEP_INTERVAL"]) + 3


def error_log(job: dict) -> str:
    return " | ".join(line["message"] for line in job["logs"] if line["level"] == "ERROR")


def poll_tasks_until_final(sandbox, api, job_id: int, timeout: float) -> dict:
    """A healthy worker that keeps polling (and finds nothing left to do)."""
    def final():
        reserve(api, job_id, 16)
        job = sandbox.client.job(job_id)
        return job if job["status"] in ("SUCCESS", "FAILURE", "REVOKED") else None

    return poll_until(final, timeout=timeout, interval=0.1, what=f"job {job_id} final")


# --- seed 000: tasks exhaust max_deliver and die silently ------------------------------------------------


@pytest.mark.stack(**INLINE_ONLY)
def test_dead_tasks_with_workers_polling_fail_the_job_inline(sandbox):
    with api_client(sandbox) as api:
        job_id = started_job(sandbox, images=6)
        post(api, job_id, [success(t) for t in reserve(api, job_id, 2)])
        assert len(reserve(api, job_id, 16)) == 4  # a worker takes 4 and crashes
        job = poll_tasks_until_final(sandbox, api, job_id, timeout=window(sandbox) + 10)
    assert job["status"] == "FAILURE"
    log = error_log(sandbox.client.job(job_id))
    assert "4 of 6 tasks exhausted max_deliver=3" in log, log
    assert "Dead letters" in log and "3 deliveries" in log, log


@pytest.mark.parametrize("host_stream", ["before", "after"])
@pytest.mark.stack(**INLINE_ONLY)
def test_antennas_advisory_stream_coexists_with_the_fixes(sandbox, host_stream):
    """Antenna's TaskQueueManager adds `advisories` on $JS.EVENT.ADVISORY.> on every connect. Created before
    a job runs with the fixes on, the fixes read dead letters from it; created after, it is still accepted."""
    import asyncio

    import nats

    async def antenna_connects():
        nc = await nats.connect(sandbox.stack.nats.url)
        try:
            js = nc.jetstream()
            await js.add_stream(name="advisories", subjects=["$JS.EVENT.ADVISORY.>"], max_age=3600)
            return (await js.stream_info("advisories")).config.subjects
        finally:
            await nc.close()

    if host_stream == "before":
        assert asyncio.run(antenna_connects()) == ["$JS.EVENT.ADVISORY.>"]
    with api_client(sandbox) as api:
        job_id = started_job(sandbox, images=2)
        assert len(reserve(api, job_id, 16)) == 2  # a worker takes both and crashes
        job = poll_tasks_until_final(sandbox, api, job_id, timeout=window(sandbox) + 10)
    assert job["status"] == "FAILURE"
    assert "Dead letters" in error_log(sandbox.client.job(job_id))
    assert asyncio.run(antenna_connects()) == ["$JS.EVENT.ADVISORY.>"]


@pytest.mark.stack(**OFF)
def test_dead_tasks_with_fixes_off_leave_the_job_started(sandbox):
    with api_client(sandbox) as api:
        job_id = started_job(sandbox, images=6)
        assert len(reserve(api, job_id, 16)) == 6
        # workers keep polling (and crashing on whatever is redelivered) while NATS uses up max_deliver
        still_started = stays(lambda: reserve(api, job_id, 16) is not None
                              and sandbox.client.job(job_id)["status"] == "STARTED", window(sandbox))
    queue = sandbox.client.job(job_id, queue=True)["queue"]
    assert still_started, "the incident did not reproduce: the job left STARTED without the fixes"
    assert queue["num_pending"] == 0 and queue["num_ack_pending"] == 0  # NATS gave up; nobody noticed


@fixes_off_and_on()
def test_dead_tasks_without_any_worker_polling(sandbox, fixes):
    """Every worker died right after reserving: nothing fetches, so NATS never even exhausts the tasks."""
    client = sandbox.client
    with api_client(sandbox) as api:
        job_id = started_job(sandbox, images=5)
        assert len(reserve(api, job_id, 16)) == 5
    if fixes == "on":
        client.wait_for_status(job_id, ("FAILURE",), timeout=window(sandbox) + 10)
        assert "no worker has fetched" in error_log(client.job(job_id))
    else:
        assert stays(lambda: client.job(job_id)["status"] == "STARTED", window(sandbox))
        job = client.job(job_id, queue=True)
        assert job["queue"]["num_ack_pending"] == 5  # stuck in flight forever


@fixes_off_and_on()
def test_nats_restart_with_wiped_store_loses_the_stream(sandbox, fixes):
    client = sandbox.client
    with api_client(sandbox) as api:
        job_id = started_job(sandbox, images=5)
        post(api, job_id, [success(t) for t in reserve(api, job_id, 2)])
        sandbox.stack.nats.restart(wipe=True)  # ephemeral storage: every stream is gone
        if fixes == "on":
            client.wait_for_status(job_id, ("FAILURE",), timeout=window(sandbox) + 10)
            assert "gone" in error_log(client.job(job_id)), error_log(client.job(job_id))
        else:
            poll_until(lambda: _tasks_or_none(api, job_id) is not None, timeout=15, what="NATS back")
            assert stays(lambda: client.job(job_id)["status"] == "STARTED"
                         and _tasks_or_none(api, job_id) == [], window(sandbox))
            assert client.job(job_id, queue=True)["queue"]["stream_exists"] is False


def _tasks_or_none(api, job_id):
    response = api.post(f"/jobs/{job_id}/tasks/", json={"batch_size": 4})
    return response.json()["tasks"] if response.status_code == 200 else None


def test_nats_restart_with_store_kept_job_continues(sandbox):
    with api_client(sandbox) as api:
        job_id = started_job(sandbox, images=8)
        post(api, job_id, [success(t) for t in reserve(api, job_id, 3)])
        sandbox.stack.nats.restart(wipe=False)
        poll_until(lambda: _tasks_or_none(api, job_id) is not None, timeout=15, what="NATS back")
        poll_until(lambda: drain(api, job_id) == 0 and sandbox.client.job(job_id)["status"] == "SUCCESS",
                   timeout=30, interval=0.2, what="job completes after the restart")
    job = sandbox.client.job(job_id)
    assert job["progress"]["stages"][1]["params"][0]["value"] == 8


# --- seed 003: REVOKE leaves the stream behind; Start republishes on top --------------------------------


@fixes_off_and_on()
def test_revoke_then_start(sandbox, fixes):
    client = sandbox.client
    job_id = started_job(sandbox, images=30)
    sandbox.stack.manage("chaos_revoke", str(job_id))  # the watchdog
    leftover = client.job(job_id, queue=True)["queue"]
    client.start(job_id)
    client.wait_for_status(job_id, "STARTED", timeout=30)
    queue = client.job(job_id, queue=True)["queue"]
    if fixes == "on":
        assert leftover["stream_exists"] is False  # cleaned on REVOKED
        assert queue["messages"] == 30
    else:
        assert leftover["stream_exists"] is True and leftover["messages"] == 30
        assert queue["messages"] == 60  # 30 duplicates published on top


@fixes_off_and_on()
def test_concurrent_double_start_publishes_once(sandbox, fixes):
    from harness.client import SandboxClient

    stack = sandbox.stack
    with sandbox.client as client:
        job_id = client.create_job(images=20)["id"]
        barrier, codes = threading.Barrier(2), []

        def start():
            with SandboxClient(stack.api_url, stack.token) as own:
                barrier.wait()
                codes.append(own.action(job_id, "run").status_code)

        threads = [threading.Thread(target=start) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        client.wait_for_status(job_id, "STARTED", timeout=30)
        # let every run task that was queued finish publishing before counting
        poll_until(lambda: client.job(job_id, queue=True)["queue"]["messages"] >= 20, timeout=10)
        if fixes == "on":
            assert sorted(codes) == [200, 409]
            job = client.job(job_id, queue=True)
            assert job["queue"]["messages"] == 20 and job["attempt"] == 1
        else:
            assert codes == [200, 200]
            poll_until(lambda: client.job(job_id, queue=True)["queue"]["messages"] == 40, timeout=10,
                       what="both Starts published")


@fixes_off_and_on()
def test_stale_result_from_previous_attempt(sandbox, fixes):
    """A slow worker posts attempt 1's result after a re-Start: it must not ack attempt 2's task."""
    client = sandbox.client
    with api_client(sandbox) as api:
        job_id = started_job(sandbox, images=4)
        old = reserve(api, job_id, 4)
        client.cancel(job_id)
        client.start(job_id)
        client.wait_for_status(job_id, "STARTED", timeout=30)
        answer = post(api, job_id, [success(t) for t in old])
        statuses = {t["status"] for t in answer["tasks"]}
        if fixes == "on":
            assert statuses == {"rejected_stale"}
            assert answer["results_queued"] == 0
            assert len(reserve(api, job_id, 16)) == 4  # attempt 2's tasks are all still there
        else:
            assert statuses == {"queued"}  # counted, and acked against attempt 2's messages


@pytest.mark.stack(**ON)
def test_cancel_while_nats_is_down_cleans_up_once_it_is_back(sandbox):
    job_id = started_job(sandbox, images=3)
    sandbox.stack.nats.kill()
    try:
        assert sandbox.client.cancel(job_id)["status"] == "REVOKED"  # the transition never fails
    finally:
        sandbox.stack.nats.start()
    poll_until(lambda: (q := sandbox.client.job(job_id, queue=True)["queue"]) and not q["stream_exists"],
               timeout=20, interval=0.2, what="deferred cleanup retried by the sweep")


# --- no false positives -----------------------------------------------------------------------------------


@pytest.mark.stack(**ON)
def test_slow_worker_that_sends_in_progress_is_not_failed(sandbox):
    """Holds its batch for 4 × ack_wait, heartbeating, while another worker polls and finds nothing."""
    ack_wait = float(sandbox.settings["CHAOS_ACK_WAIT"])
    with api_client(sandbox) as api:
        job_id = started_job(sandbox, images=3)
        held = reserve(api, job_id, 3)
        subjects = [t["reply_subject"] for t in held]
        deadline = time.monotonic() + 4 * ack_wait
        while time.monotonic() < deadline:
            response = api.post(f"/jobs/{job_id}/tasks/in_progress/", json={"reply_subjects": subjects})
            assert response.status_code == 200 and response.json()["extended"] == 3
            assert reserve(api, job_id, 16) == []  # nothing redelivered to the other worker
            assert sandbox.client.job(job_id)["status"] == "STARTED"
            time.sleep(ack_wait / 3)  # the heartbeat period of a slow worker
        post(api, job_id, [success(t) for t in held])
    assert sandbox.client.wait_for_status(job_id, ("SUCCESS", "FAILURE"), timeout=30)["status"] == "SUCCESS"


@pytest.mark.stack(**ON)
def test_short_nats_outage_does_not_fail_a_healthy_job(sandbox):
    with api_client(sandbox) as api:
        job_id = started_job(sandbox, images=6)
        post(api, job_id, [success(t) for t in reserve(api, job_id, 2)])
        sandbox.stack.nats.pause()
        try:
            # several sweeps run while NATS does not answer; workers poll and get 503s
            assert stays(lambda: api.post(f"/jobs/{job_id}/tasks/", json={"batch_size": 1}).status_code == 503
                         and sandbox.client.job(job_id)["status"] == "STARTED",
                         3 * float(sandbox.settings["CHAOS_SWEEP_INTERVAL"]) + 2)
        finally:
            sandbox.stack.nats.resume()
        # like the real worker: after an error it polls again in a few seconds
        time.sleep(2 * float(sandbox.settings["CHAOS_SWEEP_INTERVAL"]))
        poll_until(lambda: _tasks_or_none(api, job_id) is not None, timeout=15, what="NATS back")
        poll_until(lambda: drain(api, job_id) >= 0 and sandbox.client.job(job_id)["status"] != "STARTED",
                   timeout=30, interval=0.2, what="job finishes after the outage")
    job = sandbox.client.job(job_id)
    assert job["status"] == "SUCCESS", error_log(job)


# --- Antenna's Limits layout and a WorkQueue stream -------------------------------------------------------


@pytest.mark.parametrize("retention", [
    pytest.param(r, marks=pytest.mark.stack(retention=r, **INLINE_ONLY), id=r) for r in ("limits", "workqueue")])
def test_dead_tasks_are_counted_right_under_both_retentions(sandbox, retention):
    client = sandbox.client
    with api_client(sandbox) as api:
        job_id = started_job(sandbox, images=10)
        post(api, job_id, [success(t) for t in reserve(api, job_id, 7)])
        assert len(reserve(api, job_id, 16)) == 3
        job = poll_tasks_until_final(sandbox, api, job_id, timeout=window(sandbox) + 10)
    assert job["status"] == "FAILURE"
    assert "3 of 10 tasks exhausted" in error_log(client.job(job_id))
