"""Build-time agreement between the sub-components of a flow-matching family.

Sample rates, hop lengths, feature sizes, channels and the guidance rule must agree between
features, acoustic model and vocoder; a mismatch names both sides.
"""

from __future__ import annotations

from voxpipe.core.compatibility import label, raise_problems


def _require_equal(left, left_attr: str, left_value, right, right_attr: str, right_value, problems: list[str]) -> None:
    if left_value != right_value:
        problems.append(f"{label(left)} has {left_attr}={left_value} but {label(right)} has {right_attr}={right_value}")


def check_flow_components(*, features, acoustic_model, guidance, solver, vocoder) -> None:
    """Raise CompatibilityError listing every disagreement."""
    problems: list[str] = []
    model = acoustic_model
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
        want = ("takes the guidance scale as an input (use guidance 'distilled')" if model.uses_guidance_scale_input
                else "does not take a guidance-scale input (use 'classifier-free' or 'none')")
        problems.append(f"{label(model)} {want}, but the family has {label(guidance)}")
    raise_problems(problems)
