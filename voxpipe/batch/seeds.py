"""Per-item noise seeds: given in the manifest, else derived from the item's id.

The derived seed is a stable hash of the id (BLAKE2b, not Python's `hash()`, which is salted per
process), so an item gets the same seed in every run, on every machine and in every worker, and
re-synthesizes bit-identically alone: `pipeline.synthesize(text, voice, seed=item_seed(id))`.
"""

from __future__ import annotations

import hashlib

MAX_SEED = 2**63 - 1
"""Seeds are in [0, MAX_SEED] (what torch generators and `chunk_seed` take)."""


def item_seed(item_id: str) -> int:
    """The seed of an item without one: the first 8 bytes of BLAKE2b(id, UTF-8), big-endian,
    masked to 63 bits."""
    digest = hashlib.blake2b(item_id.encode("utf-8"), digest_size=8, person=b"voxpipe-seed").digest()
    return int.from_bytes(digest, "big") & MAX_SEED
