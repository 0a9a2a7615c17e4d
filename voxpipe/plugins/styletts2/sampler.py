"""StyleTTS2's style sampler: ADPM2 (ancestral DPM-Solver-2) over a Karras sigma schedule, as
the official `DiffusionSampler(..., sampler=ADPM2Sampler(), sigma_schedule=KarrasSchedule(
sigma_min=1e-4, sigma_max=3.0, rho=9.0), clamp=False)`.

Why a kind of its own (`style_sampler`) rather than voxpipe's `solver`: a solver integrates a
deterministic velocity field over t in [0, 1]; this one walks noise levels sigma from
sigma_max down, calls a *denoiser* x_hat(x, sigma) (not a velocity), and is ancestral: every
step adds fresh noise, so it needs a noise source besides the initial state.

Schedule: sigma_i = (s_max^(1/rho) + i / (n - 1) (s_min^(1/rho) - s_max^(1/rho)))^rho for
i < n, then 0. Official quirk kept: only n - 1 steps run (sigma_0 -> ... -> sigma_{n-1} =
sigma_min), the last schedule entry (0) is never reached. One step from sigma to sigma_next:
    sigma_up = sqrt(sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2), sigma_down = sqrt(sigma_next^2 - sigma_up^2)
    sigma_mid = ((sigma^(1/r) + sigma_down^(1/r)) / 2)^r                       (r = `step_rho`)
    d = (x - D(x, sigma)) / sigma;  x_mid = x + d (sigma_mid - sigma)
    d_mid = (x_mid - D(x_mid, sigma_mid)) / sigma_mid;  x = x + d_mid (sigma_down - sigma) + sigma_up z
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from pydantic import Field

from voxpipe.core.component import Component
from voxpipe.core.component import Params as BaseParams
from voxpipe.core.errors import ConfigError

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""denoise(x (B, 1, C), sigma 0-dim tensor) -> denoised x of the same shape."""


class ADPM2Sampler(Component):
    """Ancestral DPM-Solver-2 over a Karras schedule (StyleTTS2's style sampler)."""

    kind = "style_sampler"
    name = "adpm2"
    description = "ADPM2 ancestral sampler over a Karras sigma schedule (StyleTTS2 style diffusion)"

    class Params(BaseParams):
        num_steps: int = Field(5, ge=2, description="schedule length (official diffusion_steps; n - 1 steps run)")
        sigma_min: float = Field(1e-4, gt=0)
        sigma_max: float = Field(3.0, gt=0)
        rho: float = Field(9.0, gt=0, description="Karras schedule curvature")
        step_rho: float = Field(1.0, gt=0, description="ADPM2 midpoint rho (official default 1)")

    def __init__(self, *, num_steps, sigma_min, sigma_max, rho, step_rho) -> None:
        if sigma_min >= sigma_max:
            raise ConfigError(f"style_sampler: sigma_min {sigma_min} must be below sigma_max {sigma_max}")
        self.num_steps, self.sigma_min, self.sigma_max = num_steps, sigma_min, sigma_max
        self.rho, self.step_rho = rho, step_rho

    def sigmas(self, num_steps: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """(num_steps + 1,) float32 noise levels, the last one 0 (computed as the official)."""
        inverse = 1.0 / self.rho
        steps = torch.arange(num_steps, device=device, dtype=torch.float32)
        sigmas = (self.sigma_max ** inverse + steps / (num_steps - 1)
                  * (self.sigma_min ** inverse - self.sigma_max ** inverse)) ** self.rho
        return torch.nn.functional.pad(sigmas, (0, 1), value=0.0)

    def noise_shapes(self, shape: Sequence[int], num_steps: int | None = None) -> list[tuple[int, ...]]:
        """Shapes of the noises one `sample` call draws: the initial one, then one per step."""
        steps = self.num_steps if num_steps is None else num_steps
        return [tuple(shape)] * steps

    def sample(self, denoise: Denoiser, shape: Sequence[int], *, generator: torch.Generator | None = None,
               noises: Sequence[torch.Tensor] | None = None, num_steps: int | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
        """A sample of `shape` (B, 1, C). Noise comes from `noises` (see `noise_shapes`: parity
        with another implementation's draws) or else from `generator` (standard normal, the
        initial noise first, then one draw per step, as the official order)."""
        steps = self.num_steps if num_steps is None else num_steps
        if steps < 2:
            raise ConfigError(f"style_sampler: num_steps must be >= 2, got {steps}")
        expected = self.noise_shapes(shape, steps)
        if noises is not None:
            if len(noises) != len(expected) or any(tuple(n.shape) != s for n, s in zip(noises, expected)):
                raise ConfigError(f"style_sampler: expected {len(expected)} noises of shape {expected[0]}, got "
                                  f"{[tuple(n.shape) for n in noises]}")
            draws = iter([n.to(device=device, dtype=torch.float32) for n in noises])
        else:
            draws = (torch.randn(s, generator=generator, device=device) for s in expected)
        sigmas = self.sigmas(steps, device)
        x = sigmas[0] * next(draws)
        for i in range(steps - 1):
            x = self._step(x, denoise, sigmas[i], sigmas[i + 1], next(draws))
        return x

    def _step(self, x: torch.Tensor, denoise: Denoiser, sigma: torch.Tensor, sigma_next: torch.Tensor,
              noise: torch.Tensor) -> torch.Tensor:
        r = self.step_rho
        sigma_up = math.sqrt(float(sigma_next ** 2 * (sigma ** 2 - sigma_next ** 2) / sigma ** 2))
        sigma_down = torch.sqrt(sigma_next ** 2 - sigma_up ** 2)
        sigma_mid = float(((sigma ** (1 / r) + sigma_down ** (1 / r)) / 2) ** r)
        d = (x - denoise(x, sigma)) / sigma
        x_mid = x + d * (sigma_mid - sigma)
        d_mid = (x_mid - denoise(x_mid, torch.tensor(sigma_mid, device=x.device))) / sigma_mid
        return x + d_mid * (sigma_down - sigma) + noise * sigma_up

    def describe(self) -> dict:
        return {"num_steps": self.num_steps, "sigma_min": self.sigma_min, "sigma_max": self.sigma_max, "rho": self.rho}
