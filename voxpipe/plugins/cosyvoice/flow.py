"""The CosyVoice flow as the `cosyvoice-flow` component (kind `flow`, registered by the family):
25 Hz speech tokens + the voice's prompt -> 50 Hz 80-bin mel. The model folder's hyper-parameter
file picks the architecture from its `flow:` class tag:

- `CausalMaskedDiffWithXvec` (cosyvoice2.yaml): token embedding -> upsampling conformer encoder
  (flow_encoder.py) -> Linear = mu; estimator: causal U-Net (flow_estimator.py);
- `CausalMaskedDiffWithDiT` (cosyvoice3.yaml): token embedding (80-d) -> PreLookaheadLayer ->
  repeat each token token_mel_ratio times = mu; estimator: DiT (flow_dit.py).

Loads the official `flow.pt` strictly; the ODE runs through a voxpipe solver (`cosine-euler`) and
guidance (`cosyvoice-cfg`) component, both swappable, the same for both architectures.

Interface (what the family's token-to-wave calls):

    mel, cache = flow.inference(
        token,                # (1, T) int speech tokens to speak (all generated so far when streaming)
        prompt_token,         # (1, Tp) int speech tokens of the prompt (may be (1, 0))
        prompt_feat,          # (1, Tm, 80) float prompt mel, Tm = token_mel_ratio * Tp normally
        embedding,            # (1, spk_embed_dim) speaker x-vector (CAM++, 192), L2-normalized here
        streaming=False,      # chunk-causal attention in encoder and estimator (static_chunk_size;
                              # CosyVoice3: the DiT's only, 2 x chunk_size frames)
        finalize=True,        # False: the last pre_lookahead_len tokens are right context only,
                              # their frames are not produced
        noise=None,           # (1, 80, >= N) float starting noise, its first N frames used (N = all
                              # frames incl. the prompt's); None = the official fixed noise (seed 0)
        n_timesteps=None,     # solver steps; None = the solver's num_steps (10)
    )
    # mel: (1, 80, T_new) float32, the generated tokens' frames only (prompt removed):
    #      T_new = token_mel_ratio * (T - (0 if finalize else pre_lookahead_len))
    # cache: None (CosyVoice 2/3 keep no flow cache; the official methods return None as well)

Steps (as the official `inference`): x-vector -> F.normalize -> Linear -> (1, 80); tokens
[prompt; token] embedded; CosyVoice2: encoder (upsampling conformer) -> (1, 2T, D) -> Linear ->
mu (1, 80, 2T); CosyVoice3: pre-lookahead layer -> each token repeated twice -> mu (1, 80, 2T);
prompt mel on the first Tm frames of `cond`; the ODE from noise integrates the estimator's
CFG-guided velocity (flow_ode.py); the prompt's frames are cut off.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, ValidationError
from torch import nn

from voxpipe.core.component import Component, Params, nested
from voxpipe.core.errors import ConfigError
from voxpipe.core.onednn import use_onednn_linears
from voxpipe.plugins.cosyvoice.flow_config import FlowHyperParams, read_flow_hyperparams
from voxpipe.plugins.cosyvoice.flow_dit import DiTEstimator
from voxpipe.plugins.cosyvoice.flow_dit_config import DiTFlowHyperParams
from voxpipe.plugins.cosyvoice.flow_encoder import (
    PreLookaheadLayer,
    UpsampleConformerEncoder,
)
from voxpipe.plugins.cosyvoice.flow_estimator import ConditionalEstimator
from voxpipe.plugins.cosyvoice.flow_ode import (
    CosineEulerSolver,
    CosyVoiceCFG,
    FlowCondition,
)
from voxpipe.plugins.cosyvoice.official_weights import (
    load_official,
    pick_official_files,
)

WEIGHTS_FILE = "flow.pt"
FIXED_NOISE_SEED = 0
FIXED_NOISE_FRAMES = 50 * 300
"""The official `CausalConditionalCFM.rand_noise`: randn(1, 80, 15000) after seeding 0 (300 s)."""

_fixed_noise: dict[int, torch.Tensor] = {}


def fixed_noise(channels: int) -> torch.Tensor:
    """(1, channels, 15000) the official fixed starting noise (the same frames on every call,
    which keeps streamed chunks consistent)."""
    if channels not in _fixed_noise:
        generator = torch.Generator().manual_seed(FIXED_NOISE_SEED)
        _fixed_noise[channels] = torch.randn(1, channels, FIXED_NOISE_FRAMES, generator=generator)
    return _fixed_noise[channels]


class CausalFlowModel(nn.Module):
    """The official `CausalMaskedDiffWithXvec`'s modules under the official names."""

    def __init__(self, params: FlowHyperParams) -> None:
        super().__init__()
        self.params = params
        self.input_embedding = nn.Embedding(params.vocab_size, params.input_size)
        self.spk_embed_affine_layer = nn.Linear(params.spk_embed_dim, params.output_size)
        self.encoder = UpsampleConformerEncoder(params.encoder, params.pre_lookahead_len, params.token_mel_ratio)
        self.encoder_proj = nn.Linear(params.encoder.output_size, params.output_size)
        self.decoder = nn.Module()
        self.decoder.estimator = ConditionalEstimator(params.estimator)

    def condition(self, token: torch.Tensor, prompt_token: torch.Tensor, prompt_feat: torch.Tensor,
                  embedding: torch.Tensor, streaming: bool, finalize: bool) -> FlowCondition:
        """Encoder output, speaker and prompt conditions over all frames (prompt + new)."""
        speaker = self.spk_embed_affine_layer(F.normalize(embedding, dim=1))
        tokens = torch.cat([prompt_token, token], dim=1).long().clamp(min=0)
        embedded = self.input_embedding(tokens)
        if finalize:
            h = self.encoder(embedded, streaming=streaming)
        else:
            lookahead = self.params.pre_lookahead_len
            h = self.encoder(embedded[:, :-lookahead], context=embedded[:, -lookahead:], streaming=streaming)
        mu = self.encoder_proj(h).transpose(1, 2)
        frames = mu.shape[2]
        prompt = torch.zeros(1, self.params.output_size, frames, dtype=mu.dtype, device=mu.device)
        prompt[:, :, :prompt_feat.shape[1]] = prompt_feat.transpose(1, 2)
        mask = torch.ones(1, 1, frames, dtype=mu.dtype, device=mu.device)
        return FlowCondition(mu=mu.contiguous(), speaker=speaker, prompt=prompt, mask=mask, streaming=streaming)


class CausalDiTFlowModel(nn.Module):
    """The official `CausalMaskedDiffWithDiT`'s modules under the official names (CosyVoice3)."""

    def __init__(self, params: DiTFlowHyperParams) -> None:
        super().__init__()
        self.params = params
        self.input_embedding = nn.Embedding(params.vocab_size, params.input_size)
        self.spk_embed_affine_layer = nn.Linear(params.spk_embed_dim, params.output_size)
        self.pre_lookahead_layer = PreLookaheadLayer(params.input_size, params.pre_lookahead_len,
                                                     hidden=params.pre_lookahead.channels)
        self.decoder = nn.Module()
        self.decoder.estimator = DiTEstimator(params.estimator)

    def condition(self, token: torch.Tensor, prompt_token: torch.Tensor, prompt_feat: torch.Tensor,
                  embedding: torch.Tensor, streaming: bool, finalize: bool) -> FlowCondition:
        """Token embeddings looked ahead at and repeated per mel frame (mu), speaker and prompt
        conditions over all frames (prompt + new)."""
        speaker = self.spk_embed_affine_layer(F.normalize(embedding, dim=1))
        tokens = torch.cat([prompt_token, token], dim=1).long().clamp(min=0)
        embedded = self.input_embedding(tokens)
        if finalize:
            h = self.pre_lookahead_layer(embedded)
        else:
            lookahead = self.params.pre_lookahead_len
            h = self.pre_lookahead_layer(embedded[:, :-lookahead], context=embedded[:, -lookahead:])
        mu = h.repeat_interleave(self.params.token_mel_ratio, dim=1).transpose(1, 2)
        frames = mu.shape[2]
        prompt = torch.zeros(1, self.params.output_size, frames, dtype=mu.dtype, device=mu.device)
        prompt[:, :, :prompt_feat.shape[1]] = prompt_feat.transpose(1, 2)
        mask = torch.ones(1, 1, frames, dtype=mu.dtype, device=mu.device)
        return FlowCondition(mu=mu.contiguous(), speaker=speaker, prompt=prompt, mask=mask, streaming=streaming)


def build_flow_model(params: FlowHyperParams | DiTFlowHyperParams) -> CausalFlowModel | CausalDiTFlowModel:
    """The flow module the hyper-parameters describe (CosyVoice2 or CosyVoice3)."""
    if isinstance(params, DiTFlowHyperParams):
        return CausalDiTFlowModel(params)
    return CausalFlowModel(params)


def _sub_component(kind: str, value: Any, where: str) -> Component:
    """A built sub-component, or one built from its `{type: ..., **params}` section (this
    module's own ODE parts directly, others through the registry)."""
    if isinstance(value, Component):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a {kind} component or a {{type: NAME, ...}} section, "
                          f"got {type(value).__name__}")
    own = {("solver", CosineEulerSolver.name): CosineEulerSolver, ("guidance", CosyVoiceCFG.name): CosyVoiceCFG}
    params = dict(value)
    cls = own.get((kind, params.get("type")))
    if cls is not None:
        params.pop("type")
        try:
            return cls.create(**params)
        except ValidationError as error:
            raise ConfigError(f"{where}: {error}") from None
    from voxpipe.core.config import validate_component
    from voxpipe.registry import get_registry

    return validate_component(kind, value, where, "<cosyvoice-flow>", get_registry(), None).build(where)


class CosyVoiceFlowParams(Params):
    model_dir: str | None = Field(None, description="official model folder (cosyvoice2.yaml or cosyvoice3.yaml "
                                                    "+ flow.pt)")
    weights: str | None = Field(None, description="flow.pt (default: model_dir/flow.pt)")
    hyperparams: str | None = Field(None, description="cosyvoice2.yaml / cosyvoice3.yaml (default: the one in "
                                                      "model_dir); its flow class picks CosyVoice2 or 3")
    solver: dict = nested("solver", {"type": "cosine-euler", "num_steps": 10})
    guidance: dict = nested("guidance", {"type": "cosyvoice-cfg"})
    device: str = Field("cpu", description="torch device")
    kernels: Literal["reference", "fused"] = Field(
        "reference", description="reference: torch's kernels (parity with the official flow); fused: the float32 "
        "Linear layers on oneDNN's GEMM (2x MKL's on AVX-512 AMD CPUs, rounding ~1e-6; --precision auto picks it)")


class CosyVoiceFlow(Component):
    """CosyVoice 2/3 flow: speech tokens + prompt mel + x-vector -> mel (conditional flow matching)."""

    kind: ClassVar[str] = "flow"
    name: ClassVar[str] = "cosyvoice-flow"
    description: ClassVar[str] = ("CosyVoice2 CausalMaskedDiffWithXvec (conformer + U-Net) or CosyVoice3 "
                                  "CausalMaskedDiffWithDiT (pre-lookahead + DiT), picked by the yaml (official flow.pt)")
    Params: ClassVar[type[Params]] = CosyVoiceFlowParams

    def __init__(self, *, model_dir, weights, hyperparams, solver, guidance, device, kernels) -> None:
        yaml_file, weights_file = pick_official_files(model_dir, hyperparams, weights, WEIGHTS_FILE)
        self.params = read_flow_hyperparams(yaml_file)
        self.files = {"hyperparams": yaml_file, "weights": weights_file}
        self.model = build_flow_model(self.params)
        load_official(self.model, weights_file)
        self.kernels = kernels
        use_onednn_linears(self.model, kernels == "fused")
        try:
            self.device = torch.device(device)
            self.model.eval().to(self.device)
        except (RuntimeError, AssertionError) as error:
            raise ConfigError(f"cosyvoice-flow: cannot use device {device!r}: {error}") from None
        solver = _sub_component("solver", solver, "flow.solver")
        guidance = _sub_component("guidance", guidance, "flow.guidance")
        if not isinstance(guidance, CosyVoiceCFG):
            raise ConfigError(f"cosyvoice-flow: guidance {getattr(guidance, 'name', type(guidance).__name__)!r} cannot "
                              f"drive the CosyVoice estimator; use type: cosyvoice-cfg")
        self.solver, self.guidance = solver, guidance
        self.feature_dim = self.params.output_size
        self.token_mel_ratio = self.params.token_mel_ratio
        self.pre_lookahead_len = self.params.pre_lookahead_len
        self.vocab_size = self.params.vocab_size
        self.spk_embed_dim = self.params.spk_embed_dim
        self.variant = "CosyVoice3" if isinstance(self.params, DiTFlowHyperParams) else "CosyVoice2"
        # tokens per streaming attention chunk (the official chunk_size: 25 in both releases)
        if isinstance(self.params, DiTFlowHyperParams):
            self.chunk_tokens = self.params.estimator.static_chunk_size // self.token_mel_ratio
        else:
            self.chunk_tokens = self.params.encoder.static_chunk_size

    def describe(self) -> dict:
        return {"variant": self.variant, "feature_dim": self.feature_dim, "token_mel_ratio": self.token_mel_ratio,
                "vocab_size": self.vocab_size, "spk_embed_dim": self.spk_embed_dim,
                "chunk_tokens": self.chunk_tokens, "kernels": self.kernels}

    @property
    def guidance_scale(self) -> float:
        scale = getattr(self.guidance, "scale", None)
        return self.params.inference_cfg_rate if scale is None else float(scale)

    def _check(self, token, prompt_token, prompt_feat, embedding, finalize) -> None:
        def fail(message: str):
            raise ValueError(f"cosyvoice-flow: {message}")

        for name, value in (("token", token), ("prompt_token", prompt_token)):
            if not isinstance(value, torch.Tensor) or value.dim() != 2 or value.shape[0] != 1:
                fail(f"{name} must be a (1, T) tensor of speech tokens, got "
                     f"{tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__}")
            if value.is_floating_point():
                fail(f"{name} must hold integer token ids, got {value.dtype}")
            if value.numel() and int(value.max()) >= self.vocab_size:
                fail(f"{name} has token {int(value.max())} >= the flow's vocab_size {self.vocab_size}")
        if prompt_feat.dim() != 3 or prompt_feat.shape[0] != 1 or prompt_feat.shape[2] != self.feature_dim:
            fail(f"prompt_feat must be (1, frames, {self.feature_dim}), got {tuple(prompt_feat.shape)}")
        if embedding.dim() != 2 or tuple(embedding.shape) != (1, self.spk_embed_dim):
            fail(f"embedding must be (1, {self.spk_embed_dim}), got {tuple(embedding.shape)}")
        tokens = token.shape[1] + prompt_token.shape[1]
        used = tokens if finalize else tokens - self.pre_lookahead_len
        if token.shape[1] == 0 or used <= 0:
            fail(f"no tokens to turn into frames ({token.shape[1]} tokens, finalize={finalize}, "
                 f"pre_lookahead_len={self.pre_lookahead_len})")
        if prompt_feat.shape[1] > used * self.token_mel_ratio:
            fail(f"prompt_feat has {prompt_feat.shape[1]} frames, more than the {used * self.token_mel_ratio} "
                 f"frames of all tokens")

    @torch.inference_mode()
    def inference(self, token: torch.Tensor, prompt_token: torch.Tensor, prompt_feat: torch.Tensor,
                  embedding: torch.Tensor, streaming: bool = False, finalize: bool = True,
                  noise: torch.Tensor | None = None, n_timesteps: int | None = None) -> tuple[torch.Tensor, None]:
        """See the module docstring: -> (mel (1, 80, T_new) float32, None)."""
        self._check(token, prompt_token, prompt_feat, embedding, finalize)
        lookahead = 0 if finalize else self.pre_lookahead_len
        frames = self.token_mel_ratio * (prompt_token.shape[1] + token.shape[1] - lookahead)  # prompt's + new
        if noise is None and frames > FIXED_NOISE_FRAMES:
            raise ValueError(f"cosyvoice-flow: {frames} frames is more than the official fixed noise's "
                             f"{FIXED_NOISE_FRAMES} (300 s); pass noise or synthesize shorter pieces")
        start = noise if noise is not None else fixed_noise(self.feature_dim)
        if start.dim() != 3 or start.shape[0] != 1 or start.shape[1] != self.feature_dim or start.shape[2] < frames:
            raise ValueError(f"cosyvoice-flow: noise must be (1, {self.feature_dim}, >= {frames}), got "
                             f"{tuple(start.shape)}")
        device = self.device
        cond = self.model.condition(token.to(device), prompt_token.to(device), prompt_feat.to(device, torch.float32),
                                    embedding.to(device, torch.float32), bool(streaming), bool(finalize))
        x0 = start[:, :, :frames].to(device, torch.float32).transpose(1, 2)  # solver state (1, T, 80)
        field = self.guidance.field(self.model.decoder.estimator, cond, self.guidance_scale)
        mel = self.solver.sample(field, x0, num_steps=n_timesteps)
        return mel.transpose(1, 2)[:, :, prompt_feat.shape[1]:].float().contiguous(), None

