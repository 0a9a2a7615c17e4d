"""Build-time agreement checks between the components of a pipeline.

A mismatch (sample rate, hop, feature dim, vocabulary) is a CompatibilityError naming both sides,
raised when the pipeline is built rather than heard as noise at run time.
"""

from __future__ import annotations

from voxpipe.core.errors import CompatibilityError


def _label(component) -> str:
    return f"{component.kind} {getattr(component, 'name', '') or type(component).__name__!r}"


def _require_equal(left, left_attr: str, left_value, right, right_attr: str, right_value, problems: list[str]) -> None:
    if left_value != right_value:
        problems.append(
            f"{_label(left)} has {left_attr}={left_value} but {_label(right)} has {right_attr}={right_value}"
        )


def check_vocabulary(tokenizer, model, problems: list[str]) -> None:
    """Every token the tokenizer can emit must mean the same id in the model's vocabulary."""
    tok_vocab, model_vocab = getattr(tokenizer, "vocab", None), getattr(model, "vocab", None)
    if not tok_vocab or not model_vocab:
        return
    differing = [t for t, i in tok_vocab.items() if model_vocab.get(t, i) != i]
    out_of_range = [t for t, i in tok_vocab.items() if i >= len(model_vocab) and t not in model_vocab]
    if differing or out_of_range:
        sample = ", ".join(repr(t) for t in (differing + out_of_range)[:5])
        problems.append(
            f"{_label(tokenizer)} vocabulary ({len(tok_vocab)} tokens) does not match {_label(model)} vocabulary "
            f"({len(model_vocab)} tokens): e.g. {sample} have other ids or none in the model"
        )


def check_pipeline(*, features=None, tokenizer=None, acoustic_model=None, vocoder=None, solver=None, guidance=None) -> None:
    """Raise CompatibilityError listing every disagreement."""
    problems: list[str] = []
    model = acoustic_model
    if model is None:
        raise CompatibilityError("a pipeline needs an acoustic_model")
    if model.output == "features":
        missing = [kind for kind, comp in (("features", features), ("vocoder", vocoder), ("solver", solver), ("guidance", guidance)) if comp is None]
        if missing:
            raise CompatibilityError(
                f"{_label(model)} emits features, so the pipeline also needs: {', '.join(missing)}"
            )
        channels = getattr(features, "num_channels", 1)
        per_channel = features.feature_dim // channels
        _require_equal(features, "num_channels", channels, model, "num_channels", getattr(model, "num_channels", 1), problems)
        _require_equal(features, "sample_rate", features.sample_rate, model, "sample_rate", model.sample_rate, problems)
        _require_equal(features, "hop_length", features.hop_length, model, "hop_length", model.hop_length, problems)
        _require_equal(features, "feature_dim", features.feature_dim, model, "feature_dim", model.feature_dim, problems)
        _require_equal(features, "sample_rate", features.sample_rate, vocoder, "feature_sample_rate", vocoder.feature_sample_rate, problems)
        _require_equal(features, "hop_length", features.hop_length, vocoder, "hop_length", vocoder.hop_length, problems)
        _require_equal(features, "feature_dim per channel", per_channel, vocoder, "feature_dim", vocoder.feature_dim, problems)
        needs_input = getattr(guidance, "feeds_scale_to_model", False)
        if needs_input != model.uses_guidance_scale_input:
            want = "takes the guidance scale as an input (use guidance 'distilled')" if model.uses_guidance_scale_input else "does not take a guidance-scale input (use 'classifier-free' or 'none')"
            problems.append(f"{_label(model)} {want}, but the pipeline has {_label(guidance)}")
    elif vocoder is not None:
        problems.append(f"{_label(model)} emits a waveform itself; remove {_label(vocoder)} from the pipeline")
    if tokenizer is not None:
        check_vocabulary(tokenizer, model, problems)
    if problems:
        raise CompatibilityError("incompatible pipeline components:\n  - " + "\n  - ".join(problems))
