"""Batch synthesis: a manifest of items -> audio files named by id + a results manifest.

`run_batch` (voxpipe batch) reads and checks the manifest (`read_manifest`), skips finished
items, and runs the rest on an engine: `LocalEngine` (worker processes) or `RayEngine` (Ray Data
actor pool, the `ray` extra). Every worker is an `ItemSynthesizer`. See docs/batch.md.
"""

from voxpipe.batch.manifest import BatchItem, ManifestError, read_manifest
from voxpipe.batch.runner import BatchSummary, default_workers, make_engine, run_batch
from voxpipe.batch.seeds import item_seed

__all__ = ["BatchItem", "BatchSummary", "ManifestError", "default_workers", "item_seed", "make_engine",
           "read_manifest", "run_batch"]
