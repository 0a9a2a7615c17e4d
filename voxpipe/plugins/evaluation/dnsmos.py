"""Quality predictor `dnsmos`: Microsoft's DNSMOS, the ONNX models bundled in `speechmos`.

Non-intrusive (no clean reference needed) MOS predictors trained on crowd-sourced ratings of
noisy and enhanced speech (Reddy et al., ICASSP 2021/2022): `sig` (speech signal quality),
`bak` (background noise, higher = quieter), `ovrl` (overall), all ITU-T P.835 on a 1-5 scale,
and `p808` (overall quality, P.808). speechmos's own implementation runs them: audio at 16 kHz,
scored in 9.01 s windows; a shorter clip is repeated end-to-end until it fills one window.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from voxpipe.core.audio import Audio
from voxpipe.core.component import Params
from voxpipe.eval.interfaces import QualityPredictor
from voxpipe.plugins.evaluation.dependencies import mono_16k, require


class DnsmosParams(Params):
    personalized: bool = Field(False, description="personalized DNSMOS (penalizes interfering talkers)")


class DnsmosPredictor(QualityPredictor):
    """DNSMOS P.835 (SIG/BAK/OVRL) and P.808 from speechmos's bundled ONNX models; loaded on first use."""

    name = "dnsmos"
    description = "DNSMOS P.835 SIG/BAK/OVRL + P.808 (speechmos's bundled ONNX models), 16 kHz"
    Params = DnsmosParams
    metrics: ClassVar[tuple[str, ...]] = ("sig", "bak", "ovrl", "p808")

    def __init__(self, personalized: bool) -> None:
        require("the 'dnsmos' quality predictor", "speechmos", "onnxruntime", "librosa", "requests")
        self.personalized = personalized
        self._model = None

    @property
    def model(self):
        if self._model is None:
            import speechmos
            from speechmos.dnsmos import DNSMOS

            root = Path(next(iter(speechmos.__path__)))
            primary = root / ("pdnsmos_models" if self.personalized else "dnsmos_models") / "sig_bak_ovr.onnx"
            self._model = DNSMOS(str(primary), str(root / "dnsmos_models" / "model_v8.onnx"))
        return self._model

    def score(self, audio: Audio) -> dict[str, float]:
        """Audio (any rate) -> {"sig", "bak", "ovrl", "p808"}, each on a 1-5 scale."""
        result = self.model(mono_16k(audio, "audio to score"), 16000, self.personalized)
        return {"sig": float(result["sig_mos"]), "bak": float(result["bak_mos"]),
                "ovrl": float(result["ovrl_mos"]), "p808": float(result["p808_mos"])}

    def describe(self) -> dict:
        return {"model": "DNSMOS" + (" personalized" if self.personalized else ""), "sample_rate": 16000}
