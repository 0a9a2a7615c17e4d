"""Grouping text chunks into generation batches (ZipVoice's rule)."""

from __future__ import annotations


def batch_by_duration(
    lengths: list[int], max_seconds: float, prompt_seconds: float, token_seconds: float
) -> list[list[int]]:
    """Indices of chunks grouped into batches, shortest first.

    A chunk joins the batch while (tokens in batch + its tokens) * token_seconds + (items in
    batch) * prompt_seconds stays within `max_seconds`, exactly as ZipVoice's `batchify_tokens`
    counts (the newcomer's own prompt copy is not counted); a chunk over the budget on its own
    still gets a batch.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    batch: list[int] = []
    tokens_in_batch = 0
    for index in order:
        needed = (tokens_in_batch + lengths[index]) * token_seconds + len(batch) * prompt_seconds
        if not batch or needed <= max_seconds:
            batch.append(index)
            tokens_in_batch += lengths[index]
        else:
            batches.append(batch)
            batch, tokens_in_batch = [index], lengths[index]
    if batch:
        batches.append(batch)
    return batches
