"""The manifest records that the engine reads: a variant's candidate builds and a task's partial-run deps."""

from __future__ import annotations

from planc.runtime.contract.kinds import TaskKind
from planc.runtime.contract.manifest import Candidate, Const, PlannedChoice, Task, Variant


def test_a_variant_carries_its_candidate_builds_and_writes_them_back() -> None:
    d = {
        "path": "modules/g/x86_64-avx2.vmfb", "backend": "llvm-cpu", "driver": "local-task",
        "candidates": [{"name": "plain", "path": "a.vmfb", "driver": "local-task"},
                       {"name": "nhwc", "path": "b.vmfb", "driver": "local-task"}],
        "reference": "plain",
        "choice": {"host": "h1", "chosen": "nhwc", "seconds": {"plain": 2.0, "nhwc": 1.0}, "notes": {}},
    }
    v = Variant.from_json("x86_64-avx2", d)
    assert v.candidates == (Candidate("plain", "a.vmfb", "local-task"), Candidate("nhwc", "b.vmfb", "local-task"))
    assert v.choice == PlannedChoice("h1", "nhwc", {"plain": 2.0, "nhwc": 1.0}, {})
    assert v.reference == "plain" and v.chosen == ""
    assert v.to_json() == d
    # The schema does not check these fields: a malformed candidate or choice reads as absent.
    odd = Variant.from_json("t", {"path": "p", "candidates": [{"name": "x"}, 3], "choice": {"host": 1}})
    assert odd.candidates == () and odd.choice is None and odd.to_json() == {"path": "p"}


def test_a_merged_group_task_carries_its_result_deps() -> None:
    t = Task.from_json({"name": "g", "kind": "compute", "module": "g", "args": ["a", {"const": 2}],
                        "results": ["r0", "r1"], "result_deps": [[0], [0, 1]],
                        "arg_types": [{"dtype": "f32", "shape": [2]}, {"dtype": "i32", "shape": []}]})
    assert t.kind is TaskKind.COMPUTE and t.args == ("a", Const(2))
    assert t.result_deps == ((0,), (0, 1)) and t.arg_types is not None and t.arg_types[0].shape == (2,)
