"""Faults of one job: a watchdog revoke, a double Start, workers that take tasks and vanish or are killed."""

from __future__ import annotations

import threading

from harness.chaos.base import Fault, FaultTarget
from harness.chaos.wire import Wire


class Revoke(Fault):
    verb, help, positional = "revoke", "what Antenna's watchdog does to a job it thinks stuck: REVOKED", "job"
    one_shot = True

    def inject(self, target: FaultTarget, job: int, **args) -> dict:
        target.revoke(job)
        return {"job": job}


class DoubleStart(Fault):
    verb, help, positional = "double-start", "two concurrent POST /run/ for one job (a double click)", "job"
    one_shot = True

    def inject(self, target: FaultTarget, job: int, **args) -> dict:
        barrier, codes = threading.Barrier(2), {}

        def press(i: int) -> None:
            with Wire(target.api_url, target.token, target.history, process=f"starter-{i}") as wire:
                barrier.wait(10)
                codes[i] = wire.start(job)

        threads = [threading.Thread(target=press, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        return {"job": job, "codes": sorted(codes.values(), key=str)}


class ReserveAndVanish(Fault):
    verb, help, positional = ("reserve-and-vanish",
                              "a worker reserves a batch and is never heard of again; --repeat: until healed", "job")

    def inject(self, target: FaultTarget, job: int, batch: int = 16, repeat: bool = False, interval: float = 0.1,
               **args) -> dict:
        self.stop, self.thread, self.taken = threading.Event(), None, 0
        self.wire = Wire(target.api_url, target.token, target.history, process="vanishing-worker")
        self.taken = len(self.wire.reserve(job, batch))
        if repeat:  # a crash-looping fleet: every task it is handed is lost again
            def loop():
                while not self.stop.wait(interval):
                    self.taken += len(self.wire.reserve(job, batch))

            self.thread = threading.Thread(target=loop, name="vanishing-worker", daemon=True)
            self.thread.start()
        return {"job": job, "tasks": self.taken, "repeat": repeat}

    def heal(self, target: FaultTarget) -> dict:
        if not hasattr(self, "wire"):
            return {}
        self.stop.set()
        if self.thread is not None:
            self.thread.join(30)
        self.wire.close()
        return {"tasks": self.taken}


class WorkerKill(Fault):
    verb, help, positional = "worker-kill", "SIGKILL a worker subprocess while it holds a reserved batch", "job"
    one_shot = True

    def inject(self, target: FaultTarget, job: int, batch: int = 5, wait: float = 10.0, **args) -> dict:
        """Kills the worker once it holds a batch, or after `wait` seconds if the job has nothing left to hand
        out (then nothing was lost: tasks 0)."""
        from harness.waiting import Timeout
        from harness.workers.process import WorkerProcess

        self.victim = WorkerProcess(target.api_url, target.token, kind="slow", job_ids=[job], batch_size=batch,
                                    hold=600)
        self.victim.start()
        pid = self.victim.pid
        try:
            tasks = self.victim.wait_for_reservation(timeout=wait)["tasks"]
        except Timeout:
            tasks = 0
        self.victim.kill()
        target.history.extend(self.victim.history().ops)  # what it did, up to its last op before the kill
        return {"job": job, "tasks": tasks, "pid": pid}

    def heal(self, target: FaultTarget) -> dict:
        if hasattr(self, "victim"):
            self.victim.stop()  # already dead: only its temp dir goes
        return {}


class ConsumerDelete(Fault):
    verb, help, positional = ("consumer-delete",
                              "delete the job's NATS consumer(s) mid-job (an operator, a half-done cleanup)", "job")
    one_shot = True

    def inject(self, target: FaultTarget, job: int, **args) -> dict:
        import asyncio

        import nats

        from fixes.jetstream.queue import servers
        from harness.checks.subjects import stream_name

        async def delete() -> list[str]:
            nc = await nats.connect(servers(target.nats_url), connect_timeout=2, allow_reconnect=False)
            try:
                js = nc.jetstream(timeout=5)
                names = [info.name for info in await js.consumers_info(stream_name(job))]
                for name in names:
                    await js.delete_consumer(stream_name(job), name)
                return names
            finally:
                await nc.close()

        return {"job": job, "deleted": asyncio.run(delete())}


async def _on_stream(target: FaultTarget, job: int, act) -> dict:
    """act(js, stream name) with a connection of its own (the fault is nobody the app knows)."""
    import nats

    from fixes.jetstream.queue import servers
    from harness.checks.subjects import stream_name

    nc = await nats.connect(servers(target.nats_url), connect_timeout=2, allow_reconnect=False)
    try:
        return await act(nc.jetstream(timeout=5), stream_name(job))
    finally:
        await nc.close()


class StreamRecreate(Fault):
    verb, help, positional = ("stream-recreate", "delete the job's stream and create it again, empty, with the same "
                              "config and consumers (a restore that brought back the definitions, not the data)", "job")
    one_shot = True

    def inject(self, target: FaultTarget, job: int, **args) -> dict:
        import asyncio

        async def recreate(js, stream: str) -> dict:
            config = (await js.stream_info(stream)).config
            consumers = [info.config for info in await js.consumers_info(stream)]
            await js.delete_stream(stream)
            await js.add_stream(config)
            for consumer in consumers:
                await js.add_consumer(stream, consumer)
            return {"consumers": [c.durable_name for c in consumers]}

        return {"job": job, **asyncio.run(_on_stream(target, job, recreate))}


class StreamPurge(Fault):
    verb, help, positional = "stream-purge", "purge the job's stream (an operator clearing a queue)", "job"
    one_shot = True

    def inject(self, target: FaultTarget, job: int, **args) -> dict:
        import asyncio

        async def purge(js, stream: str) -> dict:
            before = (await js.stream_info(stream)).state.messages
            await js.purge_stream(stream)
            return {"purged": before}

        return {"job": job, **asyncio.run(_on_stream(target, job, purge))}


class ProgressSaveRace(Fault):
    verb, help, positional = ("progress-save-race",
                              "Antenna: the job's next progress save is held between its read and write, so a "
                              "concurrent one is lost", "job")
    one_shot = True

    def inject(self, target: FaultTarget, job: int, seconds: float = 3.0, **args) -> dict:
        stack = getattr(target, "stack", None)
        if not hasattr(stack, "hold_progress_save"):
            raise NotImplementedError("progress-save-race needs a target that can hold a save (Antenna, in-process)")
        stack.hold_progress_save(job, seconds)
        return {"job": job, "seconds": seconds}


JOB_FAULTS = (Revoke, DoubleStart, ReserveAndVanish, WorkerKill, ConsumerDelete, StreamRecreate, StreamPurge,
              ProgressSaveRace)
