"""The Ray engine: the same items through Ray Data `map_batches` on an actor pool.

Each actor (`RayItemSynthesizer`) is an `ItemSynthesizer`: it loads the pipeline once and writes
the audio files itself, exactly as a local worker does, so outputs and results rows are the same
bytes. Items travel as JSON strings (one per block), results come back as JSON strings in
completion order. Needs the `ray` extra: `pip install 'voxpipe[ray]'`.

On a cluster, `output_dir` (and any .voice file of the manifest) must be a path every node sees
(a shared file system); voxpipe and the weights must be installed on every node.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

from voxpipe.batch.worker import BatchJob, ItemSynthesizer
from voxpipe.core.errors import ConfigError, VoxpipeError

MAX_BLOCKS = 10_000
"""Items are split into at most this many blocks: one item per block (finest balancing and
progress) up to 10,000 items, then several per block (Ray's per-block overhead stays bounded)."""


LOAD_FAILURE = "voxpipe worker could not load the pipeline"



LOCAL_NODE_ADDRESS = "127.0.0.1"  # a private local instance listens on loopback only

class RayItemSynthesizer:
    """A Ray Data callable class: batch {"item": [json, ...]} -> {"row": [json, ...]}.

    A pipeline that cannot be built is reported by the first call (an exception in an actor's
    constructor would make Ray restart the actor again and again), and `RayEngine.run` turns it
    back into the voxpipe error the local engine raises."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.synthesize, self.failure = None, None
        try:
            self.synthesize = ItemSynthesizer(job)
        except Exception as error:
            kind = "config" if isinstance(error, ConfigError) else "runtime"
            detail = str(error) if isinstance(error, VoxpipeError) else f"{type(error).__name__}: {error}"
            self.failure = f"{LOAD_FAILURE} [{kind}]: {detail}"

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        if self.failure is not None:
            raise RuntimeError(self.failure)
        rows = [json.dumps(self.synthesize(json.loads(str(item)))) for item in batch["item"]]
        return {"row": np.array(rows, dtype=object)}


class RayEngine:
    """workers: actors in the pool. address: a running cluster ("auto", "ray://host:10001"), or
    None to start a local Ray instance for this run. cpus_per_worker / gpus_per_worker: resources
    each actor reserves."""

    name = "ray"

    def __init__(self, workers: int = 1, *, address: str | None = None, cpus_per_worker: float = 1.0,
                 gpus_per_worker: float = 0.0) -> None:
        if workers < 1:
            raise ConfigError(f"--workers {workers}: the ray engine needs at least 1 actor")
        if gpus_per_worker < 0 or cpus_per_worker <= 0:
            raise ConfigError("--num-gpus-per-worker must be >= 0 and CPUs per worker > 0")
        self.workers, self.address = workers, address
        self.cpus_per_worker, self.gpus_per_worker = cpus_per_worker, gpus_per_worker

    def describe(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
        return f"on {self.workers} Ray actor(s) of {where}"

    def run(self, job: BatchJob, items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        ray = import_ray()
        started_here = not ray.is_initialized()
        if started_here:
            if self.address:
                ray.init(address=self.address, logging_level=logging.WARNING)
            else:  # a private local instance sized for the pool (logical CPUs, not a thread limit)
                ray.init(num_cpus=max(1, round(self.workers * self.cpus_per_worker)), include_dashboard=False,
                         logging_level=logging.WARNING, _node_ip_address=LOCAL_NODE_ADDRESS)
        context = ray.data.DataContext.get_current()
        progress_bars, context.enable_progress_bars = context.enable_progress_bars, False  # voxpipe shows its own
        data_logger = logging.getLogger("ray.data")
        log_level = data_logger.level
        data_logger.setLevel(max(log_level, logging.WARNING))  # no per-run INFO lines over the progress bar
        try:
            dataset = ray.data.from_items([{"item": json.dumps(item)} for item in items],
                                          override_num_blocks=min(len(items), MAX_BLOCKS))
            mapped = dataset.map_batches(
                RayItemSynthesizer, fn_constructor_kwargs={"job": job.to_dict()}, batch_size=1,
                batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=min(self.workers, len(items))),
                num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker or None,
            )
            try:
                for row in mapped.iter_rows():
                    yield json.loads(row["row"])
            except Exception as error:  # Ray wraps the actor's exception; find ours in its text
                failure = _load_failure(str(error))
                if failure is None:
                    raise
                raise failure from None
        finally:
            context.enable_progress_bars = progress_bars
            data_logger.setLevel(log_level)
            if started_here:
                ray.shutdown()


def _load_failure(text: str) -> VoxpipeError | None:
    match = re.search(re.escape(LOAD_FAILURE) + r" \[(config|runtime)\]: (.*)", text)
    if match is None:
        return None
    error_type = ConfigError if match.group(1) == "config" else VoxpipeError
    return error_type(f"worker could not load the pipeline: {match.group(2)}")


def import_ray():
    try:
        import ray
        import ray.data
    except ImportError as missing:
        raise ConfigError(f"--engine ray needs the ray extra ({missing.name} is missing): "
                          "pip install 'voxpipe[ray]'") from None
    return ray
