"""PNG figures of a report: one per metric, the runs' per-item distributions side by side.

matplotlib's object API with the Agg canvas: no pyplot, no global backend switch, no display
needed. Each figure is a box plot per run with every item drawn as a point over it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voxpipe.core.errors import ConfigError
from voxpipe.eval import EXTRA_HINT
from voxpipe.eval.metrics import Metric, field
from voxpipe.eval.report import document_metrics

PER_ITEM_FIELD = {"wer": "wer", "cer": "cer", "rtf": "rtf"}
"""Per-item values plotted for ratio metrics (the item's own rate)."""


def item_values(items: list[dict], metric: Metric) -> np.ndarray:
    name = PER_ITEM_FIELD.get(metric.key, metric.numerator)
    values = [field(item, name) for item in items]
    return np.array([v for v in values if v is not None], dtype=np.float64) * metric.scale


def write_plots(document: dict, directory: Path) -> list[Path]:
    """One `<metric>.png` per metric measured in at least one run; returns the files written."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError(f"plots need matplotlib: {EXTRA_HINT}") from None
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    runs = document["runs"]
    for metric in document_metrics(document):
        series = [item_values(run["items"], metric) for run in runs]
        if not any(values.size for values in series):
            continue
        figure = Figure(figsize=(max(4.0, 1.4 * len(runs) + 2.0), 3.6), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        shown = [values if values.size else np.array([np.nan]) for values in series]
        axes.boxplot(shown, showfliers=False)
        axes.set_xticks(range(1, len(runs) + 1), [run["label"] for run in runs],
                        rotation=20 if len(runs) > 3 else 0)
        jitter = np.random.default_rng(0)
        for position, values in enumerate(series, 1):
            axes.plot(position + jitter.uniform(-0.12, 0.12, values.size), values, "o", markersize=3, alpha=0.5)
        direction = {True: " (higher is better)", False: " (lower is better)", None: ""}[metric.higher_is_better]
        axes.set_ylabel(f"{metric.title} per item")
        axes.set_title(f"{metric.title}{direction} — {document['test_set']['name']}", fontsize=10)
        axes.grid(axis="y", alpha=0.3)
        path = directory / f"{metric.key.replace('.', '_')}.png"
        figure.savefig(path, dpi=100)
        written.append(path)
    return written
