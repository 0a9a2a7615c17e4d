"""The local engine: N worker processes on this machine, each loading the pipeline once.

Workers are started with `spawn` (a fresh interpreter: no forked torch thread pools) and pull
items from one queue, so long and short items balance themselves. Workers ignore SIGINT: on
Ctrl-C the parent stops them (SIGTERM, which a worker turns into SystemExit, so a file it is
writing is removed, not left truncated) and the run ends with the finished items recorded. A
worker that dies (e.g. killed for memory) fails only its current item and is replaced.
"""

from __future__ import annotations

import os
import queue
import signal
from collections.abc import Iterator
from typing import Any

from voxpipe.batch.worker import BatchJob, ItemSynthesizer
from voxpipe.core.errors import ConfigError, VoxpipeError

STOP_GRACE_SECONDS = 10.0
"""How long a stopped worker may take to finish its file operation before it is killed."""


class LocalEngine:
    """workers: processes (0: synthesize in this process, no pool; for debugging)."""

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        if workers < 0:
            raise ConfigError(f"--workers {workers}: expected 0 (in this process) or more")
        self.workers = workers

    def describe(self) -> str:
        return "in this process" if self.workers == 0 else f"on {self.workers} local worker process(es)"

    def run(self, job: BatchJob, items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Results rows in completion order."""
        if self.workers == 0:
            synthesizer = ItemSynthesizer(job)
            for item in items:
                yield synthesizer(item)
            return
        yield from _WorkerPool(job, items, min(self.workers, len(items))).results()


class _WorkerPool:
    def __init__(self, job: BatchJob, items: list[dict[str, Any]], size: int) -> None:
        import multiprocessing

        self.context = multiprocessing.get_context("spawn")
        self.job, self.size = job.to_dict(), size
        self.tasks, self.messages = self.context.Queue(), self.context.Queue()
        for item in items:
            self.tasks.put(item)
        for _ in range(size):
            self.tasks.put(None)  # one stop sign per worker
        self.remaining = len(items)
        self.processes: dict[int, Any] = {}
        self.in_flight: dict[int, dict[str, Any]] = {}
        self.next_index = 0
        self.replacements_left = 2 * size

    def results(self) -> Iterator[dict[str, Any]]:
        finished = False
        try:
            for _ in range(self.size):
                self._start_worker()
            while self.remaining:
                try:
                    message = self.messages.get(timeout=0.5)
                except queue.Empty:
                    yield from self._check_workers()
                    continue
                yield from self._handle(message)
            finished = True
        finally:
            self._stop(finished)

    def _start_worker(self) -> None:
        index, self.next_index = self.next_index, self.next_index + 1
        process = self.context.Process(target=worker_main, args=(index, self.job, self.tasks, self.messages, os.getpid()),
                                       name=f"voxpipe-batch-{index}", daemon=True)
        process.start()
        self.processes[index] = process

    def _handle(self, message: tuple) -> Iterator[dict[str, Any]]:
        kind, index = message[0], message[1]
        if kind == "started":
            self.in_flight[index] = message[2]
        elif kind == "done":
            self.in_flight.pop(index, None)
            self.remaining -= 1
            yield message[2]
        elif kind == "failed":  # the pipeline could not be built: every worker would fail alike
            error_type = ConfigError if message[3] else VoxpipeError
            raise error_type(f"worker could not load the pipeline: {message[2]}")

    def _check_workers(self) -> Iterator[dict[str, Any]]:
        from voxpipe.batch.results import make_row

        for index, process in list(self.processes.items()):
            if process.is_alive() or process.exitcode == 0:
                continue
            del self.processes[index]
            item = self.in_flight.pop(index, None)
            if item is None:
                raise VoxpipeError(f"worker process {index} exited with code {process.exitcode} while loading "
                                   "the pipeline (out of memory?)")
            self.remaining -= 1
            yield make_row(item["id"], seed=item["seed"],
                           error=f"worker process died (exit code {process.exitcode}; out of memory?)")
            if self.replacements_left <= 0:
                raise VoxpipeError("worker processes keep dying; stopping the batch")
            self.replacements_left -= 1
            self._start_worker()  # takes over the dead worker's stop sign too

    def _stop(self, finished: bool) -> None:
        """After the last item the workers exit by themselves (stop signs); otherwise (Ctrl-C, an
        error) they are terminated."""
        for process in self.processes.values():
            if finished:
                process.join(STOP_GRACE_SECONDS)
            if process.is_alive():
                process.terminate()
        for process in self.processes.values():
            process.join(STOP_GRACE_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
        for channel in (self.tasks, self.messages):
            channel.cancel_join_thread()
            channel.close()


def worker_main(index: int, job: dict[str, Any], tasks, messages, parent_pid: int) -> None:
    """A worker process: load the pipeline, then take items until the stop sign."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    signal.signal(signal.SIGTERM, _exit_on_terminate)
    try:
        synthesizer = ItemSynthesizer(job)
    except Exception as error:
        detail = str(error) if isinstance(error, VoxpipeError) else f"{type(error).__name__}: {error}"
        messages.put(("failed", index, detail, isinstance(error, ConfigError)))
        return
    while True:
        if os.getppid() != parent_pid:  # orphaned (the parent was killed outright): stop
            return
        try:
            item = tasks.get(timeout=1.0)
        except queue.Empty:
            continue
        if item is None:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # nothing left to clean up
            return
        messages.put(("started", index, item))
        messages.put(("done", index, synthesizer(item)))


def _exit_on_terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)
