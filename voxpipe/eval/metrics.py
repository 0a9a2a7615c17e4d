"""The reported metrics: how each is read from item records and aggregated over items.

Every aggregate is a ratio of sums, sum(numerator) / sum(denominator), over the items that have
the metric: for a per-item mean the denominator is 1 per item; WER is word errors over reference
words (corpus-level, as ASR benchmarks report it); the real-time factor is synthesis seconds over
audio seconds. `compare` bootstraps the same statistic, so a table value and its confidence
interval always describe the same quantity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Metric:
    key: str
    """Name in JSON aggregates, comparisons and plot file names ("quality.sig" for nested keys)."""
    title: str
    numerator: str
    """Item field (dotted for nested), e.g. "word_errors" or "quality.sig"."""
    denominator: str | None = None
    """Item field summed below the line; None = count of items (a mean)."""
    higher_is_better: bool | None = True
    """None: neither direction is better (duration); comparisons then say "higher" or "lower"."""
    scale: float = 1.0
    """Display factor (100 for rates shown in %)."""
    unit: str = ""


CORE_METRICS = (
    Metric("wer", "WER %", "word_errors", "reference_words", higher_is_better=False, scale=100.0, unit="%"),
    Metric("cer", "CER %", "char_errors", "reference_chars", higher_is_better=False, scale=100.0, unit="%"),
    Metric("speaker_similarity", "SIM", "speaker_similarity"),
)
TIMING_METRICS = (
    Metric("duration_s", "dur s", "duration_s", higher_is_better=None, unit="s"),
    Metric("rtf", "RTF", "synthesis_s", "duration_s", higher_is_better=False),
)


def quality_metrics(names: list[str] | tuple[str, ...]) -> tuple[Metric, ...]:
    """One metric per key a quality predictor returns."""
    return tuple(Metric(f"quality.{name}", name.upper(), f"quality.{name}") for name in names)


def metrics_for(quality_names: list[str] | tuple[str, ...]) -> tuple[Metric, ...]:
    """Every reported metric, in table order. duration_s is a mean: it is listed for its side
    effect on WER (a model that drops words makes shorter audio), not as a quality."""
    return CORE_METRICS + quality_metrics(quality_names) + TIMING_METRICS


def field(item: dict, dotted: str):
    """item["a"]["b"] for "a.b"; None when any level is missing or None."""
    value = item
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def has(item: dict, metric: Metric) -> bool:
    if field(item, metric.numerator) is None:
        return False
    return metric.denominator is None or field(item, metric.denominator) is not None


def terms(items: list[dict], metric: Metric) -> tuple[np.ndarray, np.ndarray]:
    """(numerators, denominators) float64 arrays over `items` (all must `has` the metric)."""
    numerators = np.array([float(field(item, metric.numerator)) for item in items], dtype=np.float64)
    if metric.denominator is None:
        return numerators, np.ones_like(numerators)
    return numerators, np.array([float(field(item, metric.denominator)) for item in items], dtype=np.float64)


def aggregate(items: list[dict], metric: Metric) -> float | None:
    """sum(numerator) / sum(denominator) over the items that have the metric; None if none do."""
    present = [item for item in items if has(item, metric)]
    if not present:
        return None
    numerators, denominators = terms(present, metric)
    total = denominators.sum()
    return float(numerators.sum() / total) if total > 0 else None
