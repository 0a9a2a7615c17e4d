"""Training progress: a tqdm bar (loss, learning rate, audio hours per second), TensorBoard
scalars and a plain `loss.tsv` (step, epoch, loss, lr, hours seen) for plots without TensorBoard.

Only the main process (rank 0) reports. TensorBoard logs go to `<checkpoint.dir>/tensorboard`
(`tensorboard --logdir DIR`); `torch.utils.tensorboard` needs the `tensorboard` package (the
`train` extra); without it the bar and loss.tsv still work and one warning says why.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

from voxpipe.core.files import write_text_atomically

LOSS_FILE = "loss.tsv"
LOSS_HEADER = "step\tepoch\tloss\tlr\thours_seen"


class Progress:
    """Reports of one training run. `update(...)` every step; `log(...)` every `log_every`."""

    def __init__(self, directory: Path, *, total_steps: int, start_step: int, enabled: bool, bar: bool,
                 tensorboard: bool) -> None:
        self.enabled = enabled
        self.directory = Path(directory)
        self.start_time, self.start_step = time.monotonic(), start_step
        self.seconds_at_start: float | None = None
        self.bar = self.writer = None
        if not enabled:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self._truncate_loss_file(start_step)
        if bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, unit="step", desc="train", dynamic_ncols=True)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as error:
                warnings.warn(f"no TensorBoard logs ({error}); install voxpipe[train]", stacklevel=2)
            else:
                self.writer = SummaryWriter(log_dir=str(self.directory / "tensorboard"), purge_step=start_step + 1)

    def hours_per_second(self, seconds_seen: float) -> float:
        """Audio hours trained per wall-clock second since this run (not the resumed one) began."""
        elapsed = time.monotonic() - self.start_time
        if self.seconds_at_start is None or elapsed <= 0:
            return 0.0
        return (seconds_seen - self.seconds_at_start) / 3600 / elapsed

    def update(self, step: int, loss: float, lr: float, seconds_seen: float) -> None:
        if not self.enabled:
            return
        if self.seconds_at_start is None:
            self.seconds_at_start = seconds_seen  # set at the first step, after its batch was counted
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}",
                                 audio_h_per_s=f"{self.hours_per_second(seconds_seen):.2e}", refresh=False)

    def log(self, step: int, epoch: int, loss: float, lr: float, seconds_seen: float) -> None:
        if not self.enabled:
            return
        if self.writer is not None:
            self.writer.add_scalar("train/loss", loss, step)
            self.writer.add_scalar("train/lr", lr, step)
            self.writer.add_scalar("train/audio_hours_per_second", self.hours_per_second(seconds_seen), step)
            self.writer.add_scalar("train/hours_seen", seconds_seen / 3600, step)
        with open(self.directory / LOSS_FILE, "a", encoding="utf-8") as file:
            file.write(f"{step}\t{epoch}\t{loss:.6f}\t{lr:.6g}\t{seconds_seen / 3600:.6f}\n")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()

    def _truncate_loss_file(self, start_step: int) -> None:
        """A resumed run repeats the steps after its checkpoint: drop their old rows."""
        path = self.directory / LOSS_FILE
        lines = path.read_text(encoding="utf-8").splitlines()[1:] if path.is_file() else []
        kept = [line for line in lines if line.split("\t")[0].isdigit() and int(line.split("\t")[0]) <= start_step]
        write_text_atomically(path, "\n".join([LOSS_HEADER, *kept]) + "\n")


def read_loss_file(path: Path) -> list[dict[str, float]]:
    """loss.tsv rows as dicts of floats (for plots and tests)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, map(float, line.split("\t")))) for line in lines[1:] if line]
