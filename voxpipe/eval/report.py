"""The report: a JSON document with stable keys, and a Markdown rendering of it.

Document layout (`FORMAT`, version `VERSION`; keys never renamed within a version):

    format, version, created (UTC ISO 8601), voxpipe_version,
    test_set {name, source, items},
    settings {seed},
    instruments {recognizer, speaker_encoder, quality: {type, ...} or null},
    metrics [{key, title, higher_is_better, unit}],
    runs [{label, config, overrides, audio_dir, sample_rate,
           aggregate {items, <metric key>..., by_category {category: {items, wer, cer}}},
           items [{<runner.ITEM_KEYS>}]}]

Aggregates are flat: `aggregate["quality.sig"]`, `aggregate["wer"]` (None when not measured).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from voxpipe.core.errors import ConfigError
from voxpipe.eval.metrics import Metric, aggregate, metrics_for

FORMAT = "voxpipe-eval"
VERSION = 1


def build_document(test_set, results, instruments, *, seed: int) -> dict[str, Any]:
    """results: [(RunSpec, sample_rate or None, [item record])]."""
    from importlib import metadata

    try:
        version = metadata.version("voxpipe")
    except metadata.PackageNotFoundError:
        version = None
    metrics = metrics_for(instruments.quality_names)
    runs = []
    for run, sample_rate, items in results:
        runs.append({**run.describe(), "sample_rate": sample_rate,
                     "aggregate": aggregate_items(items, metrics), "items": items})
    return {
        "format": FORMAT,
        "version": VERSION,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "voxpipe_version": version,
        "test_set": {"name": test_set.name, "source": test_set.source, "items": len(test_set.items)},
        "settings": {"seed": seed},
        "instruments": instruments.describe(),
        "metrics": [metric_entry(metric) for metric in metrics],
        "runs": runs,
    }


def metric_entry(metric: Metric) -> dict[str, Any]:
    return {"key": metric.key, "title": metric.title, "higher_is_better": metric.higher_is_better,
            "unit": metric.unit}


def aggregate_items(items: list[dict], metrics: tuple[Metric, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {"items": len(items)}
    for metric in metrics:
        out[metric.key] = aggregate(items, metric)
    wer, cer = metrics[0], metrics[1]
    categories = sorted({item["category"] for item in items if item.get("category")})
    out["by_category"] = {
        category: {"items": len(chosen), "wer": aggregate(chosen, wer), "cer": aggregate(chosen, cer)}
        for category in categories
        for chosen in [[item for item in items if item.get("category") == category]]
    }
    return out


def document_metrics(document: dict) -> tuple[Metric, ...]:
    """The Metric objects of a loaded document (quality names from its instruments)."""
    quality = (document.get("instruments") or {}).get("quality") or {}
    return metrics_for(tuple(quality.get("metrics", ())))


# ---- files ---------------------------------------------------------------------------------------
def write_text_atomic(path: Path, text: str) -> Path:
    """Write through a temporary file and a rename (`voxpipe.core.files`), creating the folder:
    an interrupted run never leaves half a file, and the file gets the usual permissions."""
    from voxpipe.core.files import write_text_atomically

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text_atomically(path, text)


def write_json(document: dict, path: Path) -> Path:
    return write_text_atomic(path, json.dumps(document, indent=1, ensure_ascii=False) + "\n")


def load_document(path: str | Path) -> dict:
    """A results JSON written by `voxpipe eval`; ConfigError if it is not one."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not JSON: {error}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ConfigError(f"{path} is not a voxpipe eval result (no \"format\": \"{FORMAT}\")")
    if document.get("version") != VERSION:
        raise ConfigError(f"{path}: result format version {document.get('version')!r}; this voxpipe reads {VERSION}")
    return document


# ---- Markdown ------------------------------------------------------------------------------------
def format_value(value: float | None, metric: Metric) -> str:
    if value is None:
        return "–"
    scaled = value * metric.scale
    if metric.unit == "%":
        return f"{scaled:.1f}"
    return f"{scaled:.3f}" if metric.key == "speaker_similarity" or metric.key == "rtf" else f"{scaled:.2f}"


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(document: dict) -> str:
    metrics = document_metrics(document)
    header = ["run", "items"] + [metric.title for metric in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for run in document["runs"]:
        cells = [cell(run["label"]), str(run["aggregate"]["items"])]
        cells += [format_value(run["aggregate"].get(metric.key), metric) for metric in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown_report(document: dict, *, worst: int = 5) -> str:
    """The whole report: summary table, WER by category, the worst-recognized items per run."""
    test_set, instruments = document["test_set"], document["instruments"]
    used = ", ".join(f"{kind} `{spec['type']}`" + (f" ({spec['model']})" if spec.get("model") else "")
                     for kind, spec in instruments.items() if spec)
    parts = [f"# voxpipe eval: {test_set['name']} ({test_set['items']} items)\n",
             f"Measured {document['created']} with {used or 'no instruments'}; seed {document['settings']['seed']}.\n",
             markdown_table(document)]
    metrics = document_metrics(document)
    categories = sorted({c for run in document["runs"] for c in run["aggregate"]["by_category"]})
    if categories and instruments.get("recognizer"):
        parts.append("\n## WER % by category\n")
        parts.append("| run | " + " | ".join(categories) + " |\n|---|" + "---:|" * len(categories))
        for run in document["runs"]:
            by = run["aggregate"]["by_category"]
            cells = [format_value(by[c]["wer"], metrics[0]) if c in by else "–" for c in categories]
            parts.append(f"| {run['label']} | " + " | ".join(cells) + " |")
        parts.append("")
    if instruments.get("recognizer"):
        for run in document["runs"]:
            ranked = sorted((i for i in run["items"] if i.get("wer")), key=lambda i: -i["wer"])[:worst]
            if not ranked:
                continue
            parts.append(f"\n## {run['label']}: highest WER\n")
            parts.append("| id | WER % | said | heard |\n|---|---:|---|---|")
            for item in ranked:
                parts.append(f"| {cell(item['id'])} | {100 * item['wer']:.0f} | {cell(item['reference_normalized'])} | "
                             f"{cell(item['hypothesis_normalized'])} |")
            parts.append("")
    return "\n".join(parts).rstrip() + "\n"
