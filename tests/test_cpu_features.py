"""CPU feature detection (voxpipe.core.cpu) and `voxpipe plugins --cpu`."""

from __future__ import annotations

from voxpipe.cli import main
from voxpipe.core.cpu import CpuInfo, detect, parse_cpuinfo

ZEN2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni

processor\t: 1
model name\t: AMD EPYC 7B12
flags\t\t: fpu sse sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c avx2 bmi2 sha_ni
"""
SAPPHIRE_RAPIDS = """processor\t: 0
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""


def test_parse_cpuinfo_reads_the_first_processor():
    model, flags = parse_cpuinfo(ZEN2)
    assert model == "AMD EPYC 7B12"
    assert {"avx2", "fma", "sha_ni"} <= flags and "avx512f" not in flags


def test_a_model_name_without_a_number_gets_family_and_model():
    zen5 = "processor\t: 0\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\nflags\t\t: avx2 avx512_bf16\n"
    assert parse_cpuinfo(zen5)[0] == "AMD EPYC (family 26 model 2)"
    assert parse_cpuinfo(ZEN2.replace("model name", "cpu family\t: 23\nmodel name"))[0] == "AMD EPYC 7B12"


def test_avx2_cpu_has_no_bf16_or_int8_dot_products():
    cpu = CpuInfo(*parse_cpuinfo(ZEN2)[:1], cores=2, flags=parse_cpuinfo(ZEN2)[1])
    assert (cpu.vector_level, cpu.has_bf16, cpu.has_int8_dot) == ("avx2", False, False)
    assert cpu.reported_flags() == ["sse4_2", "avx", "avx2", "fma", "f16c"]
    assert cpu.summary() == "AMD EPYC 7B12 (2 cores; sse4_2 avx avx2 fma f16c)"


def test_avx512_bf16_cpu_is_recognized():
    model, flags = parse_cpuinfo(SAPPHIRE_RAPIDS)
    cpu = CpuInfo(model, 2, flags)
    assert (cpu.vector_level, cpu.has_bf16, cpu.has_int8_dot) == ("avx512", True, True)


def test_empty_cpuinfo_claims_no_fast_path():
    model, flags = parse_cpuinfo("")
    cpu = CpuInfo(model or "unknown", 1, flags)
    assert (cpu.vector_level, cpu.has_bf16, cpu.has_int8_dot) == ("baseline", False, False)
    assert "none known" in cpu.summary()


def test_detect_describes_this_machine():
    cpu = detect()
    assert cpu.model and cpu.cores >= 1
    assert cpu.vector_level in ("avx512", "avx2", "avx", "baseline")


def test_plugins_cpu_prints_model_features_and_auto_choice(capsys):
    assert main(["plugins", "--cpu"]) == 0
    out = capsys.readouterr().out
    cpu = detect()
    assert cpu.model in out and cpu.vector_level in out
    assert "--precision auto: torch " + ("bf16" if cpu.has_bf16 else "fp32") in out
    from voxpipe.core import native

    expected = "on: compiled on first use with" if native.find_compiler() else "unavailable: no C compiler found"
    assert f"native kernels (the fused kernels' element-wise chains): {expected}" in out


def test_plugins_cpu_reports_native_kernels_switched_off(capsys, monkeypatch):
    monkeypatch.setenv("VOXPIPE_NATIVE_KERNELS", "0")
    assert main(["plugins", "--cpu"]) == 0
    assert "native kernels (the fused kernels' element-wise chains): off (VOXPIPE_NATIVE_KERNELS=0)" in capsys.readouterr().out
