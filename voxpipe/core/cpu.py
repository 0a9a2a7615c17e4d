"""What the CPU at hand can do: model name, vector-instruction features, the fast paths they allow.

The project's machines differ from day to day (AVX-512 with BF16/VNNI one day, AVX2/FMA only the
next, where torch bf16 matrix multiplies were 10x slower than fp32). Precision choices that
depend on the hardware ask here instead of assuming. Linux reads /proc/cpuinfo; elsewhere only
torch's own capability string is known (no flags, so no bf16/int8 fast path is claimed).
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass, field
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")

# /proc/cpuinfo flag names of the features that decide a precision's speed.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # native bf16 dot products (AVX-512 BF16, AMX)
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # int8 dot products without int16 saturation
REPORTED_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni",
                  "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")


@dataclass(frozen=True)
class CpuInfo:
    """model (str), logical cores visible to this process, flags (set of /proc/cpuinfo names)."""

    model: str
    cores: int
    flags: frozenset[str] = field(default_factory=frozenset)

    @property
    def has_bf16(self) -> bool:
        """Native bf16 arithmetic (AVX-512 BF16 or AMX): only then is bf16 faster than fp32."""
        return any(flag in self.flags for flag in BF16_FLAGS)

    @property
    def has_int8_dot(self) -> bool:
        """VNNI/AMX int8 dot products: int8 matmuls neither saturate nor lose to fp32 FMA."""
        return any(flag in self.flags for flag in INT8_DOT_FLAGS)

    @property
    def vector_level(self) -> str:
        """Widest float vector unit: avx512, avx2, avx or baseline."""
        if "avx512f" in self.flags:
            return "avx512"
        if "avx2" in self.flags and "fma" in self.flags:
            return "avx2"
        return "avx" if "avx" in self.flags else "baseline"

    def reported_flags(self) -> list[str]:
        """The flags that matter for speed, in a fixed order."""
        return [flag for flag in REPORTED_FLAGS if flag in self.flags]

    def summary(self) -> str:
        """One line: model, cores, speed-relevant flags."""
        flags = " ".join(self.reported_flags()) or "none known"
        return f"{self.model} ({self.cores} cores; {flags})"


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """(model name, flags) of the first processor block of a /proc/cpuinfo text. A model name
    without a model number (a VM's "AMD EPYC") gets the block's family and model numbers, which
    tell the CPU generations apart (family 25 model 17: Zen 4; family 26: Zen 5)."""
    model, flags, numbers = "", frozenset(), {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if not key:
            if model and flags:
                break  # end of the first processor block
            continue
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
        elif key in ("cpu family", "model") and key not in numbers:
            numbers[key] = value.strip()
    if model and not any(c.isdigit() for c in model) and len(numbers) == 2:
        model = f"{model} (family {numbers['cpu family']} model {numbers['model']})"
    return model, flags


@functools.cache
def detect() -> CpuInfo:
    """The CPU this process runs on (cached)."""
    import os

    model, flags = "", frozenset()
    try:
        model, flags = parse_cpuinfo(CPUINFO.read_text(errors="replace"))
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return CpuInfo(model=model or platform.processor() or platform.machine() or "unknown", cores=cores, flags=flags)
