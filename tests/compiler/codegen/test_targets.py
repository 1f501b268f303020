"""Targets and the iree-compile argv builder (no IREE needed)."""

import pytest
from planc.compiler.codegen.targets import Backend, Target, compile_flags, parse_targets
from planc.runtime.host.detect import KNOWN_TARGETS


def _flag(flags, name):
    values = [f.split("=", 1)[1] for f in flags if f.startswith(name + "=")]
    assert len(values) == 1, (name, flags)
    return values[0]


def test_parse_known_and_unknown():
    assert Target.parse("x86_64-avx2") is Target.X86_64_AVX2
    assert Target.parse("cuda-sm90") is Target.CUDA_SM90
    with pytest.raises(ValueError) as e:
        Target.parse("x86_64-avx3")
    message = str(e.value)
    assert "'x86_64-avx3'" in message and "expected one of:" in message
    for t in Target:
        assert t.value in message


def test_parse_targets_keeps_order_and_drops_duplicates():
    assert parse_targets("cuda-sm80, vmvx,cuda-sm80") == (Target.CUDA_SM80, Target.VMVX)
    with pytest.raises(ValueError, match="empty target list"):
        parse_targets(" , ")
    with pytest.raises(ValueError, match="unknown target 'avx2'"):
        parse_targets("vmvx,avx2")


def test_required_six_targets_exist():
    names = {t.value for t in Target}
    assert {"x86_64-avx2", "x86_64-avx512", "aarch64-neon", "cuda-sm80", "cuda-sm90", "vmvx"} <= names


@pytest.mark.parametrize(
    ("target", "triple", "cpu", "must_have"),
    [
        (Target.X86_64_AVX2, "x86_64-unknown-linux-gnu", "x86-64-v3", {"+avx2", "+fma", "+bmi2", "+f16c"}),
        (Target.X86_64_AVX512, "x86_64-unknown-linux-gnu", "x86-64-v4", {"+avx512f", "+avx512vl", "+avx2"}),
        (Target.AARCH64_NEON, "aarch64-unknown-linux-gnu", "generic", {"+neon"}),
        (Target.RISCV64_RVV, "riscv64-unknown-linux-gnu", "generic-rv64", {"+v", "+d"}),
    ],
)
def test_cpu_flags(target, triple, cpu, must_have):
    flags = compile_flags(target)
    assert _flag(flags, "--iree-hal-target-device") == "local"
    assert _flag(flags, "--iree-hal-local-target-device-backends") == "llvm-cpu"
    assert _flag(flags, "--iree-llvmcpu-target-triple") == triple
    assert _flag(flags, "--iree-llvmcpu-target-cpu") == cpu
    features = set(_flag(flags, "--iree-llvmcpu-target-cpu-features").split(","))
    assert must_have <= features
    assert all(f.startswith("+") for f in features)
    assert target.backend is Backend.LLVM_CPU
    assert target.drivers == ("local-task", "local-sync")


def test_avx2_has_no_avx512_features():
    features = _flag(compile_flags(Target.X86_64_AVX2), "--iree-llvmcpu-target-cpu-features")
    assert "avx512" not in features


def test_no_flag_ever_targets_the_build_host():
    for t in Target:
        for flag in compile_flags(t):
            assert not flag.endswith("=host"), flag


def test_cuda_flags():
    flags = compile_flags(Target.CUDA_SM80)
    assert _flag(flags, "--iree-hal-target-device") == "cuda"
    assert _flag(flags, "--iree-cuda-target") == "sm_80"
    assert not any(f.startswith("--iree-llvmcpu") for f in flags)
    sm90 = compile_flags(Target.CUDA_SM90)
    device = _flag(sm90, "--iree-hal-target-device")
    assert device.startswith('#hal.device.target<"cuda"') and 'arch = "sm_90"' in device
    assert _flag(sm90, "--iree-cuda-target") == "sm_90"
    assert Target.CUDA_SM90.drivers == ("cuda",)


def test_vmvx_flags():
    flags = compile_flags(Target.VMVX)
    assert _flag(flags, "--iree-hal-local-target-device-backends") == "vmvx"
    assert not any(f.startswith("--iree-llvmcpu") for f in flags)
    assert Target.VMVX.requires == frozenset()
    assert Target.VMVX.driver == "local-sync"


def test_opt_level_and_extra_flags():
    assert _flag(compile_flags(Target.VMVX), "--iree-opt-level") == "O2"
    assert _flag(compile_flags(Target.VMVX, opt_level=3), "--iree-opt-level") == "O3"
    flags = compile_flags(Target.VMVX, extra=("--iree-opt-level=O1", "--mlir-timing"))
    assert flags[-2:] == ["--iree-opt-level=O1", "--mlir-timing"]  # last wins in LLVM's cl
    with pytest.raises(ValueError, match="optimization level 5"):
        compile_flags(Target.VMVX, opt_level=5)
    with pytest.raises(ValueError, match="does not start with '-'"):
        compile_flags(Target.VMVX, extra=("O3",))


def test_builder_is_pure():
    a = compile_flags(Target.X86_64_AVX512, opt_level=1)
    a.append("--mutated")
    assert compile_flags(Target.X86_64_AVX512, opt_level=1) == a[:-1]


def test_requires_match_the_features_compiled_for():
    for t in (Target.X86_64_AVX2, Target.X86_64_AVX512, Target.AARCH64_NEON, Target.RISCV64_RVV):
        features = _flag(compile_flags(t), "--iree-llvmcpu-target-cpu-features").split(",")
        assert t.requires == {t.spec.arch, *(f[1:] for f in features)}
    assert Target.CUDA_SM80.requires == {"cuda", "sm_80"}
    assert Target.X86_64_AVX2.requires < Target.X86_64_AVX512.requires


def test_runtime_table_agrees_with_compiler_targets():
    assert set(KNOWN_TARGETS) == {t.value for t in Target}
    for t in Target:
        assert KNOWN_TARGETS[t.value] == (t.rank, t.requires), t


def test_ranking_order():
    order = sorted(Target, key=lambda t: -t.rank)
    names = [t.value for t in order]
    assert names.index("cuda-sm80") < names.index("x86_64-avx512") < names.index("x86_64-avx2")
    assert names.index("x86_64-avx2") < names.index("aarch64-neon") < names.index("vmvx")
    assert names[-1] == "vmvx"
