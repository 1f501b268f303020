"""The manifest as records: the loader builds them once, after the schema checks, and they say what the JSON says."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from planc.runtime.api.signature import signature
from planc.runtime.bundle.loader import load_bundle
from planc.runtime.contract.builtins import Builtin
from planc.runtime.contract.dtypes import DType
from planc.runtime.contract.kinds import TaskKind
from planc.runtime.contract.manifest import Manifest, TensorType, Variant
from planc.runtime.engine.inputs import CheckedInputs, InputError, InputSpec
from test_bundle_loader import VMFB, good_entries, make_zip


def test_loader_builds_frozen_records(tmp_path: Path) -> None:
    b = load_bundle(make_zip(tmp_path / "ok.planb", good_entries()))
    m = b.records
    assert m.plan == "demo" and m.inputs == {"frame": TensorType(DType.F32, (1, 8))}
    y, worst, polish, alert = m.tasks
    assert (y.kind, y.module, y.args, y.results) == (TaskKind.COMPUTE, "g0", ("frame",), ("y",))
    assert (worst.kind, worst.op) == (TaskKind.BUILTIN, Builtin.MAX)
    assert polish.kind is TaskKind.LOOP and polish.max == 3 and [t.name for t in polish.body] == ["z"]
    assert [t.name for t in m.all_tasks()] == ["y", "worst", "polish", "z", "alert"]
    assert alert.tool == "notify" and alert.policy.attempts == 1
    v = m.modules["g0"].variants["x86_64-avx2"]
    assert v == Variant("x86_64-avx2", VMFB, "llvm-cpu", "local-task")
    assert m.tools["py"].function == "f"
    with pytest.raises(dataclasses.FrozenInstanceError):
        y.name = "other"  # type: ignore[misc]


def test_records_give_back_the_json() -> None:
    t = {"dtype": "bf16", "shape": [2, 3]}
    assert TensorType.from_json(t).to_json() == t
    v = {"path": "modules/g0/x.vmfb", "backend": "llvm-cpu", "driver": "local-sync", "requires": ["avx2", "x86_64"],
         "rank": 40}
    assert Variant.from_json("x86_64-avx2", v).to_json() == v


def test_signature_reads_the_records(tmp_path: Path) -> None:
    b = load_bundle(make_zip(tmp_path / "ok.planb", good_entries()))
    inputs, outputs = signature(b.records)
    assert [(s.name, s.dtype, s.shape) for s in inputs] == [("frame", "f32", (1, 8))]
    # y comes from the module's output type; the untyped tool result is JSON
    assert [(s.name, s.dtype, s.shape) for s in outputs] == [("y", "f32", (1, 8)), ("loud", None, None)]


def test_inputs_are_checked_once() -> None:
    m = Manifest.from_json({"plan": "p", "inputs": [{"name": "x", "dtype": "f32", "shape": [2]}], "outputs": [],
                            "tasks": [], "modules": {}, "tools": {}})
    spec = InputSpec(m.inputs)
    checked = spec.check({"x": [1, 2]})
    assert type(checked) is CheckedInputs and checked["x"].dtype.name == "float32"
    assert spec.check(checked) is checked  # handed on: not checked again
    other = InputSpec(m.inputs)
    assert other.check(checked) is not checked  # another plan's spec checks for itself
    with pytest.raises(InputError, match="missing input 'x'"):
        spec.check({})
