"""The candidate-build table and which builds a variant carries (pure: no IREE)."""

from __future__ import annotations

from pathlib import Path

import pytest
from planc.compiler.codegen.candidates import (
    DEFAULT_SETS,
    PLAIN,
    Candidate,
    candidates_for,
    flag_set,
    parse_sets,
)
from planc.compiler.codegen.targets import Target
from planc.compiler.codegen.variants import candidate_jobs, conv_like, job_name, plan_variant

CONV = (Path(__file__).parents[1] / "data" / "conv.mlir").read_text()
NO_CONV = "func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> { %0 = stablehlo.tanh %a : tensor<4xf32> return %0 }"


def test_parse_sets_always_keeps_plain_first():
    assert parse_sets("auto") == DEFAULT_SETS
    assert parse_sets("none") == (PLAIN,)
    assert parse_sets("nhwc,im2col,nhwc") == (PLAIN, "nhwc", "im2col")


def test_unknown_flag_set_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown flag set 'nchw'.*plain, nhwc"):
        parse_sets("nchw")


def test_candidate_names_round_trip():
    for c in (Candidate("nhwc", "local-sync"), Candidate(PLAIN, "local-task"), Candidate("im2col", "local-task", 2)):
        assert Candidate.parse(c.name) == c
    with pytest.raises(ValueError, match="unknown driver"):
        Candidate.parse("plain/cuda")


def test_cuda_gets_the_plain_build_only_and_one_core_no_local_task():
    assert candidates_for(Target.CUDA_SM80, DEFAULT_SETS, 8) == (Candidate(PLAIN, "cuda"),)
    one = candidates_for(Target.X86_64_AVX2, (PLAIN, "nhwc"), 1)
    assert {c.driver for c in one} == {"local-sync"} and len(one) == 2
    assert len(candidates_for(Target.AARCH64_NEON, (PLAIN, "nhwc"), 4)) == 4


def test_only_modules_with_convolutions_get_flag_set_builds():
    assert conv_like(CONV) and not conv_like(NO_CONV)
    targets = (Target.X86_64_AVX512, Target.CUDA_SM80, Target.AARCH64_NEON)
    jobs = candidate_jobs("g0", CONV, targets, ("plain", "nhwc", "im2col"))
    assert sorted((j.module, j.target.value) for j in jobs) == [
        ("g0@im2col", "aarch64-neon"), ("g0@im2col", "x86_64-avx512"),
        ("g0@nhwc", "aarch64-neon"), ("g0@nhwc", "x86_64-avx512")]
    assert all(j.extra_flags == flag_set(j.module.split("@")[1]).flags for j in jobs)
    assert candidate_jobs("g1", NO_CONV, targets, ("plain", "nhwc")) == []


def test_a_variant_drops_builds_identical_to_an_earlier_one_and_keeps_refusals():
    t = Target.X86_64_AVX512
    built = {("g0", t): b"plain", (job_name("g0", "nhwc"), t): b"plain", (job_name("g0", "im2col"), t): b"other"}
    failed = {(job_name("g0", "img2col"), t): "error: failed to legalize"}
    v = plan_variant("g0", t, built, ("plain", "nhwc", "im2col", "img2col"), failed,
                     default_driver="local-sync", cores=2)
    assert sorted(v.members) == ["modules/g0/x86_64-avx512.im2col.vmfb", "modules/g0/x86_64-avx512.vmfb"]
    assert [c["name"] for c in v.candidates] == ["plain/local-sync", "plain/local-task",
                                                 "im2col/local-sync", "im2col/local-task"]
    assert v.reference == "plain/local-sync" and v.failed == {"img2col": "error: failed to legalize"}


def test_a_variant_with_one_build_has_no_candidates():
    t = Target.X86_64_AVX2
    v = plan_variant("g1", t, {("g1", t): b"x"}, ("plain", "nhwc"), {}, default_driver="local-task", cores=2)
    assert v.candidates == [] and list(v.members) == ["modules/g1/x86_64-avx2.vmfb"]
