"""Is run B better than run A, or is the difference noise? Paired bootstrap over test items.

Items are paired by `id` (only items both runs measured count). For each metric the statistic
is the one the report shows (`metrics.aggregate`: corpus WER, mean similarity, ...); the
difference B − A is recomputed on `resamples` bootstrap samples of the paired items (drawn with
replacement with a seeded generator, the same draws for every metric), and the percentile
interval of those differences is the confidence interval. An interval that excludes 0 is
reported as a change (better or worse by the metric's direction); one that includes 0 as noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxpipe.core.errors import ConfigError
from voxpipe.eval.metrics import Metric, has, terms
from voxpipe.eval.report import document_metrics, format_value, load_document


@dataclass(frozen=True)
class Delta:
    metric: Metric
    items: int
    a: float
    b: float
    delta: float
    low: float
    high: float

    @property
    def verdict(self) -> str:
        if self.low <= 0.0 <= self.high:
            return "no clear change"
        if self.metric.higher_is_better is None:
            return "higher" if self.delta > 0 else "lower"
        improved = (self.delta > 0) == self.metric.higher_is_better
        return "better" if improved else "worse"

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric.key, "items": self.items, "a": self.a, "b": self.b, "delta": self.delta,
                "ci_low": self.low, "ci_high": self.high, "verdict": self.verdict}


def paired_bootstrap(a_terms: tuple[np.ndarray, np.ndarray], b_terms: tuple[np.ndarray, np.ndarray],
                     indices: np.ndarray, confidence: float) -> tuple[float, float, float, float, float]:
    """(a, b, b − a, low, high) for ratio-of-sums statistics of paired items.

    a_terms, b_terms: (numerators, denominators), each (n,), item i of A paired with item i of B.
    indices: (R, n) bootstrap draws of item positions.
    """
    (a_num, a_den), (b_num, b_den) = a_terms, b_terms
    a_value, b_value = a_num.sum() / a_den.sum(), b_num.sum() / b_den.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        deltas = (b_num[indices].sum(1) / b_den[indices].sum(1)) - (a_num[indices].sum(1) / a_den[indices].sum(1))
    deltas = deltas[np.isfinite(deltas)]
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(deltas, [tail, 1.0 - tail]) if deltas.size else (np.nan, np.nan)
    return float(a_value), float(b_value), float(b_value - a_value), float(low), float(high)


def compare_runs(run_a: dict, run_b: dict, metrics: tuple[Metric, ...], *, resamples: int = 2000,
                 confidence: float = 0.95, seed: int = 0) -> list[Delta]:
    """Deltas B − A with bootstrap intervals for every metric both runs measured."""
    if resamples < 100:
        raise ConfigError(f"--resamples {resamples}: use at least 100 bootstrap resamples")
    if not 0.5 <= confidence < 1.0:
        raise ConfigError(f"--confidence {confidence}: expected a value in [0.5, 1), e.g. 0.95")
    a_items = {item["id"]: item for item in run_a["items"]}
    b_items = {item["id"]: item for item in run_b["items"]}
    common = [item_id for item_id in a_items if item_id in b_items]
    if not common:
        raise ConfigError(f"runs {run_a['label']!r} and {run_b['label']!r} share no item ids: nothing to pair")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(common), size=(resamples, len(common)))
    out = []
    for metric in metrics:
        ids = [i for i in common if has(a_items[i], metric) and has(b_items[i], metric)]
        if not ids:
            continue
        if len(ids) == len(common):
            indices = draws
        else:  # same seed, same procedure, on the subset that has this metric
            indices = np.random.default_rng(seed).integers(0, len(ids), size=(resamples, len(ids)))
        a_terms = terms([a_items[i] for i in ids], metric)
        b_terms = terms([b_items[i] for i in ids], metric)
        out.append(Delta(metric, len(ids), *paired_bootstrap(a_terms, b_terms, indices, confidence)))
    return out


def select_run(document: dict, label: str | None, path: str) -> dict:
    runs = document["runs"]
    if label is None:
        if len(runs) != 1:
            raise ConfigError(f"{path} holds {len(runs)} runs ({', '.join(r['label'] for r in runs)}); "
                              f"choose one as {path}#LABEL")
        return runs[0]
    for run in runs:
        if run["label"] == label:
            return run
    raise ConfigError(f"{path} has no run {label!r}; runs: {', '.join(r['label'] for r in runs)}")


def split_reference(reference: str) -> tuple[str, str | None]:
    """"file.json#label" -> ("file.json", "label"); "file.json" -> ("file.json", None)."""
    if "#" in reference and not Path(reference).exists():
        path, label = reference.rsplit("#", 1)
        return path, label
    return reference, None


@dataclass
class Comparison:
    a: dict[str, Any]
    b: dict[str, Any]
    paired_items: int
    only_in_a: int
    only_in_b: int
    resamples: int
    confidence: float
    seed: int
    note: str | None
    deltas: list[Delta]

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "paired_items": self.paired_items, "only_in_a": self.only_in_a,
                "only_in_b": self.only_in_b, "resamples": self.resamples, "confidence": self.confidence,
                "seed": self.seed, "note": self.note, "deltas": [delta.to_dict() for delta in self.deltas]}


def compare_files(a: str, b: str, *, resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> Comparison:
    """Compare run A (`file.json` or `file.json#label`) with run B."""
    (a_path, a_label), (b_path, b_label) = split_reference(a), split_reference(b)
    a_doc, b_doc = load_document(a_path), load_document(b_path)
    run_a, run_b = select_run(a_doc, a_label, a_path), select_run(b_doc, b_label, b_path)
    a_metrics = {m.key for m in document_metrics(a_doc)}
    metrics = tuple(m for m in document_metrics(b_doc) if m.key in a_metrics)
    deltas = compare_runs(run_a, run_b, metrics, resamples=resamples, confidence=confidence, seed=seed)
    a_ids, b_ids = {i["id"] for i in run_a["items"]}, {i["id"] for i in run_b["items"]}
    note = None
    if a_doc["instruments"] != b_doc["instruments"]:
        note = "the two files were measured with different instruments: deltas mix model and instrument changes"
    return Comparison(a={"file": a_path, "label": run_a["label"]}, b={"file": b_path, "label": run_b["label"]},
                      paired_items=len(a_ids & b_ids), only_in_a=len(a_ids - b_ids), only_in_b=len(b_ids - a_ids),
                      resamples=resamples, confidence=confidence, seed=seed, note=note, deltas=deltas)


def signed(value: float, metric: Metric) -> str:
    """A table value with its sign, e.g. "+2.0" or "-0.21"."""
    text = format_value(value, metric)
    return text if text.startswith("-") or text == "–" else "+" + text


def markdown_comparison(result: Comparison) -> str:
    percent = round(100 * result.confidence)
    heading = (f"A = {result.a['label']} ({result.a['file']}), B = {result.b['label']} ({result.b['file']}): "
               f"{result.paired_items} paired items ({result.only_in_a} only in A, {result.only_in_b} only in B); "
               f"{result.resamples} bootstrap resamples, seed {result.seed}.")
    lines = [heading, ""]
    if result.note:
        lines += [f"Note: {result.note}.", ""]
    lines += [f"| metric | A | B | B − A | {percent}% CI | |", "|---|---:|---:|---:|---|---|"]
    for delta in result.deltas:
        m = delta.metric
        lines.append(f"| {m.title} | {format_value(delta.a, m)} | {format_value(delta.b, m)} | {signed(delta.delta, m)} | "
                     f"[{signed(delta.low, m)}, {signed(delta.high, m)}] | {delta.verdict} |")
    return "\n".join(lines) + "\n"
