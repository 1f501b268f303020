"""Compiling with IREE for every target, through the cache, and running what this host can."""

import importlib.util
import io
import platform
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from planc.compiler.cache import Cache
from planc.compiler.codegen.compile import CompileErrors, CompileEvent, CompileJob, TtyProgress, compile_all
from planc.compiler.codegen.iree import IreeCompileError, compile_module
from planc.compiler.codegen.targets import Backend, Target
from planc.compiler.hlo.stablehlo import export_stablehlo, mlir_signature, normalize
from planc.runtime.host.detect import detect

iree_rt = pytest.importorskip("iree.runtime")
jax = pytest.importorskip("jax")

pytestmark = pytest.mark.iree

DEFECTS = Path(__file__).resolve().parents[3] / "examples" / "defects"
TYPES = [((4, 8), "f32"), ((8, 16), "f32"), ((16,), "f32")]
UNSUPPORTED = """
module @bad {
  func.func public @main(%arg0: tensor<4xf32>) -> tensor<4xf32> {
    %0 = stablehlo.custom_call @planc_no_such_kernel(%arg0) : (tensor<4xf32>) -> tensor<4xf32>
    return %0 : tensor<4xf32>
  }
}
"""


def dense(x, w, b):
    return jax.nn.relu(x @ w + b)


@pytest.fixture(scope="module")
def mlir():
    return export_stablehlo(dense, TYPES, name="g0")


@pytest.fixture(scope="module")
def built(mlir, tmp_path_factory):
    """Every target compiled once, through a fresh cache."""
    cache = Cache(tmp_path_factory.mktemp("cache"))
    events = []
    modules = compile_all([CompileJob("g0", t, mlir) for t in Target], cache=cache, progress=events.append)
    return cache, modules, events


def _args():
    rng = np.random.default_rng(0)
    return [rng.standard_normal(shape).astype(np.float32) for shape, _ in TYPES]


def _run(vmfb: bytes, driver: str, args):
    config = iree_rt.Config(driver)
    ctx = iree_rt.SystemContext(config=config)
    ctx.add_vm_module(iree_rt.VmModule.copy_buffer(ctx.instance, vmfb))
    return np.asarray(ctx.modules.g0.main(*args))


def test_every_target_compiles_once_uncached(built):
    _, modules, events = built
    assert set(modules) == {("g0", t) for t in Target}
    # A .vmfb is a zip-framed flatbuffer whose file identifier is "IREE".
    assert all(data.startswith(b"PK\x03\x04") and b"IREE" in data[:128] for data in modules.values())
    assert [e.done for e in events] == list(range(1, len(Target) + 1))
    assert not any(e.cached or e.failed for e in events)


def test_host_runnable_variants_match_jax(built):
    _, modules, _ = built
    host = detect(cuda=False)
    args = _args()
    expected = np.asarray(dense(*args))
    ran = []
    for t in Target:
        if t.backend is Backend.CUDA or not t.requires <= host.capabilities:
            continue
        for driver in t.drivers:
            np.testing.assert_allclose(_run(modules[("g0", t)], driver, args), expected, rtol=1e-5, atol=1e-6)
        ran.append(t)
    assert Target.VMVX in ran  # runs everywhere
    if host.arch == "x86_64" and "avx2" in host.features:
        assert Target.X86_64_AVX2 in ran


def test_other_variants_are_valid_modules(built):
    _, modules, _ = built
    instance = iree_rt.VmInstance()
    for t in Target:
        module = iree_rt.VmModule.copy_buffer(instance, modules[("g0", t)])
        assert module.name == "g0"
        declaration = module.lookup_function("main").reflection["iree.abi.declaration"]
        assert "tensor<4x8xf32>" in declaration and "tensor<4x16xf32>" in declaration


def test_variants_differ_per_target(built):
    _, modules, _ = built
    assert len({modules[("g0", t)] for t in Target}) == len(Target)


def test_output_is_byte_deterministic(mlir, built):
    _, modules, _ = built
    assert compile_module(mlir, Target.X86_64_AVX2, module_name="g0") == modules[("g0", Target.X86_64_AVX2)]


def test_x86_variants_use_only_their_vector_width(mlir, tmp_path):
    # The AVX2 variant must not touch AVX-512 registers (it would fault on an AVX2-only CPU).
    for target in (Target.X86_64_AVX2, Target.X86_64_AVX512):
        compile_all([CompileJob("g0", target, mlir)], cache=None, progress=None, save_temps=tmp_path)

    def assembly(target):
        return "".join(p.read_text() for p in (tmp_path / "g0" / target.value / "executables").glob("*.s"))
    assert "ymm" in assembly(Target.X86_64_AVX2) and "zmm" not in assembly(Target.X86_64_AVX2)
    assert "zmm" in assembly(Target.X86_64_AVX512)


def test_second_compile_hits_the_cache(mlir, built):
    cache, modules, _ = built
    events = []
    again = compile_all([CompileJob("g0", t, mlir) for t in Target], cache=cache, progress=events.append)
    assert again == modules
    assert len(events) == len(Target) and all(e.cached for e in events)
    assert len(list(cache.root.glob("??/*.vmfb"))) == len(Target)


def test_no_cache_compiles(mlir, built):
    _, modules, _ = built
    events = []
    out = compile_all([CompileJob("g0", Target.VMVX, mlir)], cache=None, progress=events.append)
    assert out[("g0", Target.VMVX)] == modules[("g0", Target.VMVX)]
    assert [e.cached for e in events] == [False]


def test_changed_flags_miss_the_cache(mlir, built):
    cache, _, _ = built
    events = []
    job = CompileJob("g0", Target.VMVX, mlir, extra_flags=("--iree-opt-level=O1",))
    compile_all([job], cache=cache, progress=events.append)
    assert [e.cached for e in events] == [False]


def test_unsupported_op_names_module_target_and_iree_message(tmp_path):
    jobs = [CompileJob("bad", Target.VMVX, UNSUPPORTED), CompileJob("bad", Target.X86_64_AVX2, UNSUPPORTED)]
    with pytest.raises(CompileErrors) as info:
        compile_all(jobs, cache=Cache(tmp_path / "cache"), progress=None, save_temps=tmp_path / "temps")
    errors = info.value.errors
    assert [(e.module_name, e.target) for e in errors] == [("bad", Target.VMVX), ("bad", Target.X86_64_AVX2)]
    message = str(info.value)
    assert "2 of 2 module compiles failed (bad/vmvx, bad/x86_64-avx2)" in message
    for e in errors:
        text = str(e)
        assert f"module 'bad' for target {e.target.value}" in text
        assert "stablehlo.custom_call" in text and "planc_no_such_kernel" in text  # IREE's own words
        assert "--iree-hal-target-device=local" in text and "--save-temps DIR" in text
        assert isinstance(e, IreeCompileError)
    kept = tmp_path / "temps" / "bad" / "vmvx"
    assert (kept / "input.mlir").read_text() == UNSUPPORTED
    assert "iree-compile" in (kept / "command.txt").read_text()
    assert "planc_no_such_kernel" in (kept / "stderr.txt").read_text()
    assert not list((tmp_path / "cache").glob("??/*.vmfb"))


def test_duplicate_jobs_are_rejected(mlir):
    with pytest.raises(ValueError, match="duplicate compile jobs: g0/vmvx"):
        compile_all([CompileJob("g0", Target.VMVX, mlir)] * 2, cache=None, progress=None)


def test_classifier_compiles_and_matches_its_reference():
    text = normalize((DEFECTS / "classifier.mlir").read_text(), name="g0")
    assert mlir_signature(text)[0] == (("f32", (1, 64, 64, 3)),)
    vmfb = compile_module(text, Target.VMVX, module_name="classifier")
    x = np.random.default_rng(1).standard_normal((1, 64, 64, 3)).astype(np.float32)
    spec = importlib.util.spec_from_file_location("defects_models", DEFECTS / "models.py")
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)
    np.testing.assert_allclose(_run(vmfb, "local-sync", [x]), np.asarray(models.classifier_reference(x)),
                               rtol=1e-5, atol=1e-6)


def test_tty_progress_draws_one_line():
    stream = io.StringIO()
    bar = TtyProgress(stream)
    bar(CompileEvent(1, 2, "g0", Target.VMVX, True, 0.0))
    bar(CompileEvent(2, 2, "g0", Target.X86_64_AVX2, False, 1.25))
    out = stream.getvalue()
    assert out.startswith("\r") and out.count("\r") == 2 and out.endswith("\n")
    assert "1/2 g0/vmvx (cached)" in out and "2/2 g0/x86_64-avx2 (1.2s)" in out


QEMU = shutil.which("qemu-x86_64") or shutil.which("qemu-x86_64-static")
RUN_VMFB = """
import site, sys; site.addsitedir({purelib!r})
import numpy as np, iree.runtime as rt
ctx = rt.SystemContext(config=rt.Config("local-sync"))
ctx.add_vm_module(rt.VmModule.copy_buffer(ctx.instance, open(sys.argv[1], "rb").read()))
args = [np.load(p) for p in sys.argv[2:]]
np.save(sys.argv[1] + ".out.npy", np.asarray(ctx.modules.g0.main(*args)))
"""


@pytest.mark.emulation
@pytest.mark.skipif(QEMU is None or platform.machine() != "x86_64", reason="needs qemu-x86_64 on x86-64")
def test_variants_on_an_emulated_haswell(built, tmp_path):
    # What the variant choice protects against: AVX-512 code on an AVX2-only CPU.
    _, modules, _ = built
    args = _args()
    paths = []
    for i, a in enumerate(args):
        paths.append(str(tmp_path / f"arg{i}.npy"))
        np.save(paths[-1], a)
    script = RUN_VMFB.format(purelib=sysconfig.get_paths()["purelib"])
    results = {}
    for target in (Target.X86_64_AVX2, Target.X86_64_AVX512):
        vmfb = tmp_path / f"{target.value}.vmfb"
        vmfb.write_bytes(modules[("g0", target)])
        proc = subprocess.run([QEMU, "-cpu", "Haswell", sys.executable, "-c", script, str(vmfb), *paths],
                              capture_output=True, text=True, timeout=300, check=False)
        results[target] = (proc.returncode, proc.stderr, vmfb)
    code, stderr, vmfb = results[Target.X86_64_AVX2]
    assert code == 0, stderr
    np.testing.assert_allclose(np.load(str(vmfb) + ".out.npy"), np.asarray(dense(*args)), rtol=1e-5, atol=1e-6)
    code, stderr, _ = results[Target.X86_64_AVX512]
    assert code != 0 and "Illegal instruction" in stderr
