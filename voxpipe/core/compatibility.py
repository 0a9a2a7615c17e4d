"""Build-time agreement between the pipeline's tokenizer and its synthesizer.

A mismatch is a CompatibilityError naming both sides, raised when the pipeline is built rather
than heard as noise at run time. Families check their own sub-components (rates, hops, feature
sizes) when they are built.
"""

from __future__ import annotations

from voxpipe.core.errors import CompatibilityError


def label(component) -> str:
    """"kind 'name'" of a component, for messages."""
    return f"{component.kind} {getattr(component, 'name', '') or type(component).__name__!r}"


def vocabulary_problems(tokenizer, model) -> list[str]:
    """Every token the tokenizer can emit must mean the same id in the model's vocabulary."""
    tok_vocab, model_vocab = getattr(tokenizer, "vocab", None), getattr(model, "vocab", None)
    if not tok_vocab or not model_vocab:
        return []
    differing = [t for t, i in tok_vocab.items() if model_vocab.get(t, i) != i]
    out_of_range = [t for t, i in tok_vocab.items() if i >= len(model_vocab) and t not in model_vocab]
    if not (differing or out_of_range):
        return []
    sample = ", ".join(repr(t) for t in (differing + out_of_range)[:5])
    return [f"{label(tokenizer)} vocabulary ({len(tok_vocab)} tokens) does not match {label(model)} vocabulary "
            f"({len(model_vocab)} tokens): e.g. {sample} have other ids or none in the model"]


def raise_problems(problems: list[str]) -> None:
    if problems:
        raise CompatibilityError("incompatible pipeline components:\n  - " + "\n  - ".join(problems))
