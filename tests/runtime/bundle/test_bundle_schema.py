"""The manifest's shape: a bundle whose manifest planrt cannot read as it must is refused at load, by field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from planc.runtime.bundle.loader import BadManifest, load_bundle
from planc.runtime.bundle.schema import check_manifest
from test_bundle_loader import MEMBERS, VMFB, good_entries, make_zip, manifest_for


def _edit(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    m = copy.deepcopy(manifest_for(MEMBERS))
    parent = m
    for k in path[:-1]:
        parent = parent[k]
    if value is _DROP:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return m


_DROP = object()


# Each was found by scripts/soak.py as a re-hashed manifest edit that loaded, then raised a traceback
# in `planrt inspect` or `planrt run` (TypeError, KeyError, AttributeError).
@pytest.mark.parametrize(("path", "value", "where"), [
    (("modules", "g0", "variants", "x86_64-avx2", "requires"), {"a": 1}, "requires"),
    (("modules", "g0", "variants", "x86_64-avx2", "rank"), "high", "rank"),
    (("modules", "g0", "inputs"), _DROP, "modules['g0'].inputs"),
    (("modules", "g0", "outputs", 0, "dtype"), "f128", "dtype"),
    (("modules", "g0"), [], "modules['g0']"),
    (("inputs", 0, "shape"), [1, -8], "inputs[0].shape[1]"),
    (("inputs", 0), "frame", "inputs[0]"),
    (("outputs", 0, "value"), None, "outputs[0].value"),
    (("tasks", 0, "kind"), "shell", "tasks[0].kind"),
    (("tasks", 0, "module"), "g9", "tasks[0].module"),
    (("tasks", 0, "results"), [], "tasks[0].results"),
    (("tasks", 1, "op"), "eval", "tasks[1]"),
    (("tasks", 2, "max"), 0, "tasks[2].max"),
    (("tasks", 2, "until"), {"op": "exec", "args": []}, "tasks[2].until"),
    (("tasks", 2, "body", 0, "args"), "y", "tasks[2].body[0].args"),
    (("tasks", 3, "tool"), "rm", "tasks[3].tool"),
    (("tasks", 3, "tool"), ["notify"], "tasks[3].tool"),  # found by the signed-bundle soak: TypeError before
    (("tasks", 3, "when"), {"ref": 7}, "tasks[3].when.ref"),
    (("tasks",), {"a": 1}, "'tasks'"),
    (("plan",), 7, "'plan'"),
])
def test_bad_shape_is_named(tmp_path: Path, path: tuple[Any, ...], value: Any, where: str) -> None:
    with pytest.raises(BadManifest) as e:
        check_manifest(_edit(path, value))
    assert where in str(e.value), str(e.value)
    bundle = make_zip(tmp_path / "b.planb", good_entries(**{k: v for k, v in _edit(path, value).items()
                                                           if k != "members"}))
    with pytest.raises(BadManifest):
        load_bundle(bundle)


def test_deep_guard_is_refused_without_recursion() -> None:
    deep: dict[str, Any] = {"ref": "worst"}
    for _ in range(5000):
        deep = {"op": "not", "args": [deep]}
    with pytest.raises(BadManifest, match="deeper than"):
        check_manifest(_edit(("tasks", 3, "when"), deep))


def test_absent_top_level_fields_mean_empty(tmp_path: Path) -> None:
    m = {"schema": 1, "plan": "tools-only", "members": []}
    check_manifest(m)
    assert (m["inputs"], m["outputs"], m["tasks"], m["modules"], m["tools"]) == ([], [], [], {}, {})
    assert load_bundle(make_zip(tmp_path / "ok.planb", good_entries())).manifest["tasks"]
    assert VMFB in load_bundle(make_zip(tmp_path / "ok2.planb", good_entries())).members


def test_module_iree_refuses_is_a_named_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Found by scripts/soak.py: a re-hashed (consistent) bundle whose module IREE refuses to load
    # ended `planrt run` in an internal error (exit 70) with a ModuleError traceback.
    import numpy as np
    from planc.runtime.cli import main

    bundle = make_zip(tmp_path / "b.planb", good_entries())  # its module bytes are not a vmfb
    np.save(tmp_path / "frame.npy", np.zeros((1, 8), np.float32))
    rc = main(["run", str(bundle), "-i", f"frame={tmp_path / 'frame.npy'}", "--no-journal"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "planrt: error: module 'g0' cannot be loaded" in err and "Traceback" not in err


@pytest.mark.parametrize(("path", "value"), [
    (("modules", "g0", "members"), None), (("targets",), 5), (("schedules", "cpu", "order"), 3),
    (("schedules", "cpu", "devices"), None), (("schedules", "cpu", "placement"), {"1": "a", "b": 2})])
def test_summary_survives_fields_only_it_reads(tmp_path: Path, path: tuple[Any, ...], value: Any) -> None:
    # Found by scripts/soak.py: `planrt inspect` raised TypeError on `"members": null` in a module.
    from planc.runtime.bundle.loader import summarize

    m = _edit(path, value)
    bundle = load_bundle(make_zip(tmp_path / "b.planb", good_entries(**{k: v for k, v in m.items()
                                                                        if k != "members"})))
    s = summarize(bundle)
    assert s["plan"] == "demo"


@pytest.mark.parametrize(("path", "value"), [
    (("modules", "g0", "members"), ["y", 5, True]), (("schedules", "cpu", "placement"), {"g0": ["cpu0"]}),
    (("schedules", "cpu", "makespan"), "soon")])
def test_inspect_text_survives_odd_summary_fields(tmp_path: Path, path: tuple[Any, ...], value: Any,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # Found by scripts/soak.py: `planrt inspect` raised TypeError formatting these.
    from planc.runtime.bundle.loader import format_summary, summarize

    m = _edit(path, value)
    bundle = load_bundle(make_zip(tmp_path / "b.planb", good_entries(**{k: v for k, v in m.items()
                                                                        if k != "members"})))
    assert "modules" in format_summary(summarize(bundle))


def test_task_without_args_reads_as_none(tmp_path: Path) -> None:
    # Found by scripts/soak.py: a re-hashed manifest whose task lost 'args' raised KeyError mid-run.
    m = _edit(("tasks", 3, "args"), _DROP)
    check_manifest(m)
    assert m["tasks"][3]["args"] == []
