"""Registration of the CosyVoice flow, its ODE parts and the HiFT vocoder (called by the family's
plugin module, `voxpipe/plugins/cosyvoice/__init__.py`, which also registers the `flow` kind).

cosyvoice-flow is a `flow` (speech tokens + prompt -> mel), cosine-euler a `solver`,
cosyvoice-cfg a `guidance`, cosyvoice-hift a `vocoder`.
"""

from __future__ import annotations


def register_flow_and_hift(register) -> None:
    """`register_components` hook body: cosyvoice-flow, cosine-euler, cosyvoice-cfg, cosyvoice-hift."""
    from voxpipe.plugins.cosyvoice.flow import CosyVoiceFlow
    from voxpipe.plugins.cosyvoice.flow_ode import CosineEulerSolver, CosyVoiceCFG
    from voxpipe.plugins.cosyvoice.hift import CosyVoiceHift

    for component in (CosyVoiceFlow, CosineEulerSolver, CosyVoiceCFG, CosyVoiceHift):
        register(component)
