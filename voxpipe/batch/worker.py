"""What every worker runs, whatever the engine: load the pipeline once, then item -> audio file + row."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from voxpipe.batch.outputs import output_path, write_audio
from voxpipe.batch.results import make_row
from voxpipe.batch.voices import VoiceCache
from voxpipe.core.errors import VoxpipeError


@dataclass
class BatchJob:
    """What a worker needs to build its pipeline and place its outputs (plain values: it is
    pickled to local workers and sent to Ray actors).

    config: pipeline YAML path or bundled name. output_dir: absolute directory of the audio files
    (on a cluster, a path every node sees). threads: torch intra-op threads of each worker
    process (None: leave the process's setting alone)."""

    config: str
    output_dir: str
    overrides: list[str] = field(default_factory=list)
    weights_dir: str | None = None
    threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ItemSynthesizer:
    """Holds one loaded pipeline; calling it synthesizes one item (a `BatchItem.to_dict()`),
    writes its audio atomically and returns its results row. A failing item gives a row with its
    error; KeyboardInterrupt and SystemExit pass through."""

    def __init__(self, job: BatchJob | dict[str, Any]) -> None:
        import torch

        from voxpipe.core.pipeline import Pipeline

        self.job = job if isinstance(job, BatchJob) else BatchJob(**job)
        if self.job.threads:
            torch.set_num_threads(self.job.threads)  # this process is a worker of ours
        self.pipeline = Pipeline.from_config(self.job.config, self.job.overrides, weights_dir=self.job.weights_dir)
        self.voices = VoiceCache()

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        path = output_path(Path(self.job.output_dir), item["id"])
        try:
            voice = self.voices.get(item["voice"])
            audio = self.pipeline.synthesize(item["text"], voice, seed=item["seed"], **item["options"])
            write_audio(audio, path)
        except VoxpipeError as error:
            return make_row(item["id"], seed=item["seed"], error=str(error), seconds=_since(start))
        except Exception as error:  # one bad item must not stop the run; the row keeps the reason
            return make_row(item["id"], seed=item["seed"], error=f"{type(error).__name__}: {error}",
                            seconds=_since(start))
        return make_row(item["id"], path=path.name, duration=audio.duration, sample_rate=audio.sample_rate,
                        seconds=_since(start), seed=item["seed"])


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 4)
