"""The VibeVoice training noise schedule and the DPM-Solver++ sampler as a voxpipe `solver`.

Time conventions. The diffusion head was trained on a discrete variance-preserving schedule:
x_k = alpha_k x0 + sigma_k eps, k = 0 .. num_train_timesteps - 1, alpha^2 + sigma^2 = 1
(`cosine`: the Glide squared-cosine alpha-bar, betas capped at 0.999). voxpipe solvers integrate
a flow-matching field from noise (t = 0) to data (t = 1); the two meet through the
rectified-flow change of variables

    y = x_k / (alpha_k + sigma_k),    t = alpha_k / (alpha_k + sigma_k),    dy/dt = x0 - eps,

so any registered solver (e.g. `euler`) can drive the head (see `denoiser.py`), and
`dpm-solver` reproduces the official multistep DPM-Solver++ (2nd order, lower order at the
last step, final sigma 0, "linspace" timesteps) step for step.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

from voxpipe.core.component import Params
from voxpipe.core.guidance import VectorField
from voxpipe.core.solver import Solver, StepCallback

BETA_SCHEDULES = ("cosine", "squaredcos_cap_v2", "linear", "scaled_linear")


class NoiseSchedule:
    """The discrete training schedule: `sigmas` (num_train,) float32 noise-to-signal ratios
    sigma_k / alpha_k, as the official scheduler computes them."""

    def __init__(self, num_train_timesteps: int, beta_schedule: str, beta_start: float = 1e-4,
                 beta_end: float = 0.02) -> None:
        if beta_schedule in ("cosine", "squaredcos_cap_v2"):
            def alpha_bar(u: float) -> float:
                return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

            betas = torch.tensor([min(1 - alpha_bar((i + 1) / num_train_timesteps) / alpha_bar(i / num_train_timesteps),
                                      0.999) for i in range(num_train_timesteps)], dtype=torch.float32)
        elif beta_schedule == "linear":
            betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
        elif beta_schedule == "scaled_linear":
            betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float32) ** 2
        else:
            raise ValueError(f"beta schedule {beta_schedule!r}; expected one of {', '.join(BETA_SCHEDULES)}")
        self.num_train_timesteps = num_train_timesteps
        self.beta_schedule = beta_schedule
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        self.sigmas = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5
        alpha, sigma = self.alpha_sigma(self.sigmas)
        # log-SNR per training step (decreasing), float64 for inverting t -> timestep
        self.log_snr = torch.log(alpha.double()) - torch.log(sigma.double())

    @staticmethod
    def alpha_sigma(ratio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sigma/alpha ratio -> (alpha, sigma) of the variance-preserving state."""
        alpha = 1 / ((ratio**2 + 1) ** 0.5)
        return alpha, ratio * alpha

    def inference_timesteps(self, num_steps: int) -> np.ndarray:
        """The official "linspace" spacing: e.g. 5 steps -> [999, 799, 599, 400, 200]."""
        return np.linspace(0, self.num_train_timesteps - 1, num_steps + 1).round()[::-1][:-1].copy().astype(np.int64)

    def timestep_of(self, log_snr: torch.Tensor) -> torch.Tensor:
        """Continuous training timestep with this log-SNR (float64), clamped to the table's range."""
        table = self.log_snr.flip(0).numpy()  # increasing
        steps = np.arange(self.num_train_timesteps - 1, -1, -1, dtype=np.float64)
        return torch.from_numpy(np.asarray(np.interp(log_snr.double().cpu().numpy(), table, steps), dtype=np.float64))

    def clamp_log_snr(self, log_snr: torch.Tensor) -> torch.Tensor:
        return log_snr.double().clamp(float(self.log_snr[-1]), float(self.log_snr[0]))


def flow_time(alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Flow-matching time of a VP state: alpha / (alpha + sigma), float64 0-dim."""
    alpha, sigma = alpha.double(), sigma.double()
    return alpha / (alpha + sigma)


class DPMSolverParams(Params):
    num_steps: int = Field(5, ge=1, le=1000, description="denoising steps per latent (VibeVoice-Realtime: 5)")
    num_train_timesteps: int = Field(1000, ge=2, description="training diffusion steps (diffusion_head_config.ddpm_num_steps)")
    beta_schedule: str = Field("cosine", description="training betas (diffusion_head_config.ddpm_beta_schedule)")
    solver_order: int = Field(2, ge=1, le=2, description="1 = DDIM-like first order, 2 = multistep second order")
    lower_order_final: bool = Field(True, description="first order on the last step (official; stabler with few steps)")


class DPMSolver(Solver):
    """Multistep DPM-Solver++ (data prediction, midpoint 2nd order) on the training schedule."""

    name: ClassVar[str] = "dpm-solver"
    description: ClassVar[str] = "DPM-Solver++ multistep (VibeVoice's scheduler: cosine betas, 5 steps)"
    Params: ClassVar[type[Params]] = DPMSolverParams

    def __init__(self, *, num_steps: int, num_train_timesteps: int, beta_schedule: str, solver_order: int,
                 lower_order_final: bool) -> None:
        if beta_schedule not in BETA_SCHEDULES:
            from voxpipe.core.errors import ConfigError

            raise ConfigError(f"solver 'dpm-solver': beta_schedule {beta_schedule!r}; expected one of "
                              f"{', '.join(BETA_SCHEDULES)}")
        self.num_steps = num_steps
        self.t_shift = 1.0
        self.solver_order = solver_order
        self.lower_order_final = lower_order_final
        self.schedule = NoiseSchedule(num_train_timesteps, beta_schedule)

    def timesteps(self, num_steps: int, t_shift: float = 1.0, t_start: float = 0.0, t_end: float = 1.0) -> torch.Tensor:
        """(num_steps + 1,) flow times of the official timesteps, ending at 1 (sigma 0)."""
        ratios = self._ratios(num_steps)
        alpha, sigma = NoiseSchedule.alpha_sigma(ratios)
        return flow_time(alpha, sigma).float()

    def _ratios(self, num_steps: int) -> torch.Tensor:
        steps = self.schedule.inference_timesteps(num_steps)
        table = self.schedule.sigmas.numpy()
        picked = np.interp(steps, np.arange(len(table)), table)
        return torch.from_numpy(np.concatenate([picked, [0.0]]).astype(np.float32))

    def sample(self, field: VectorField, x0: torch.Tensor, *, num_steps: int | None = None,
               t_shift: float | None = None, t_start: float = 0.0, t_end: float = 1.0,
               callback: StepCallback | None = None) -> torch.Tensor:
        """Denoise x0 (pure noise, any shape) with `num_steps` DPM-Solver++ steps; returns data.

        field(y, t) is the flow-matching velocity (module docstring); it gets t as a float64
        0-dim tensor so the head sees the official integer timesteps exactly."""
        if t_start != 0.0 or t_end != 1.0:
            raise ValueError("dpm-solver integrates the whole schedule (t_start=0, t_end=1)")
        if t_shift not in (None, 1.0):
            raise ValueError("dpm-solver takes no t_shift (its times come from the training schedule)")
        num_steps = self.num_steps if num_steps is None else num_steps
        ratios = self._ratios(num_steps)
        x = x0.float()
        previous: torch.Tensor | None = None  # data prediction of the step before
        lambda_previous: torch.Tensor | None = None
        for k in range(num_steps):
            alpha_s, sigma_s = NoiseSchedule.alpha_sigma(ratios[k])
            alpha_t, sigma_t = NoiseSchedule.alpha_sigma(ratios[k + 1])
            t = flow_time(alpha_s, sigma_s)
            scale = (alpha_s.double() + sigma_s.double())
            y = (x.double() / scale).to(x.dtype)
            velocity = field(y, t)
            data = (y.double() + (1 - t) * velocity.double()).to(x.dtype)
            lambda_s = torch.log(alpha_s) - torch.log(sigma_s)
            lambda_t = torch.log(alpha_t) - torch.log(sigma_t)
            h = lambda_t - lambda_s
            first_order = (self.solver_order == 1 or previous is None
                           or (k == num_steps - 1 and (self.lower_order_final or ratios[k + 1] == 0)))
            x = (sigma_t / sigma_s) * x - (alpha_t * (torch.exp(-h) - 1.0)) * data
            if not first_order:
                r = (lambda_s - lambda_previous) / h
                x = x - 0.5 * (alpha_t * (torch.exp(-h) - 1.0)) * ((1.0 / r) * (data - previous))
            previous, lambda_previous = data, lambda_s
            if callback is not None:
                callback(k, flow_time(alpha_t, sigma_t).float(), x)
        return x
