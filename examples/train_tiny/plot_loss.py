"""Plot a training run's loss curve (the `loss.tsv` that `voxpipe train` writes) to a small PNG.

    python examples/train_tiny/plot_loss.py RUN_DIR/loss.tsv docs/training_loss.png

Needs matplotlib (in the `eval` extra). Raw per-step losses are noisy (each batch draws its own
time t and prompt span), so a running mean over `--window` logged points is drawn over them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from voxpipe.training.progress import read_loss_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("loss_file", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--window", type=int, default=10, help="points in the running mean")
    parser.add_argument("--title", default="voxpipe train: tiny ZipVoice (3.5 M params), CPU")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from voxpipe.core.files import write_atomically

    rows = read_loss_file(args.loss_file)
    steps = [row["step"] for row in rows]
    losses = [row["loss"] for row in rows]
    smooth = [sum(losses[max(0, i - args.window + 1): i + 1]) / len(losses[max(0, i - args.window + 1): i + 1])
              for i in range(len(losses))]
    figure, axis = plt.subplots(figsize=(6, 3.2), dpi=90)
    axis.plot(steps, losses, color="0.75", linewidth=0.8, label="loss (logged steps)")
    axis.plot(steps, smooth, color="C0", linewidth=1.6, label=f"running mean of {args.window}")
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("flow-matching loss")
    axis.set_title(args.title, fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    write_atomically(args.output, lambda temporary: figure.savefig(temporary, format="png"))
    print(f"wrote {args.output} ({len(rows)} points, steps {int(steps[0])}..{int(steps[-1])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
