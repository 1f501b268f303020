"""planc explain: text, JSON and Gantt charts for every example plan; determinism; bad input."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from planc.compiler.bundle.build import BuildOptions, optimize
from planc.compiler.cli import main
from planc.compiler.costs.context import cost_model
from planc.compiler.explain.report import SlotKind, explain, format_explanation
from planc.compiler.ir.graph import OUTPUT, GroupTask, LoopTask

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
PLANS = [("defects/defects.plan", None), ("agent/agent.plan", None),
         ("sensors/sensors.plan", "sensors"), ("sensors/sensors.plan", "vib_screen")]
DEPLOYS = ["edge-x86-gpu", "edge-x86-arm"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"


def _argv(file: str, plan: str | None, deploy: str, *extra: str) -> list[str]:
    argv = ["explain", str(EXAMPLES / file), "--deploy", deploy, *extra]
    return argv + (["--plan", plan] if plan else [])


def _run_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("deploy", DEPLOYS)
@pytest.mark.parametrize(("file", "plan"), PLANS, ids=[p or f.split("/")[0] for f, p in PLANS])
def test_explain_every_example(file, plan, deploy, tmp_path, capsys):
    import matplotlib.image

    doc = _run_json(capsys, _argv(file, plan, deploy, "--json", "-o", str(tmp_path / "chart")))
    graph = optimize(EXAMPLES / file, plan=plan, options=BuildOptions(deploy=deploy)).graph

    # One slot per scheduled task (the output pseudo-task aside), each on a device of the deployment.
    tasks = [n for n in graph.topo_order() if n != OUTPUT]
    assert sorted(s["task"] for s in doc["slots"]) == sorted(tasks)
    devices = {d["name"]: d["kind"] for d in doc["devices"]}
    assert all(devices[s["device"]] == s["device_kind"] and 0 <= s["start"] <= s["finish"] for s in doc["slots"])
    assert doc["totals"]["makespan"] == max(s["finish"] for s in doc["slots"])
    assert doc["totals"]["heft_makespan"] >= doc["totals"]["makespan"] * (1 - 1e-9) or doc["objective"] != "latency"
    # Every group the IR holds, loop bodies included, with a price on every device.
    groups = {t.name: t for t in graph.walk() if isinstance(t, GroupTask)}
    assert {g["name"]: g["members"] for g in doc["groups"]} == {n: [m.name for m in g.members]
                                                                for n, g in groups.items()}
    for g in doc["groups"]:
        assert set(g["seconds"]) == {d for d, kind in devices.items() if kind != "io"}  # I/O lanes compute nothing
        assert g["device"] is None or g["seconds"][g["device"]] is not None

    png, svg = tmp_path / "chart.png", tmp_path / "chart.svg"
    assert doc["charts"] == [str(png), str(svg)]
    assert png.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(png)
    assert image.shape[1] == 1000 and 200 <= image.shape[0] <= 1000 and image.shape[2] in (3, 4)
    root = ET.parse(svg).getroot()
    assert root.tag == f"{SVG_NS}svg"
    ids = {el.get("id") for el in root.iter()}
    drawn = {s["task"] for s in doc["slots"] if s["kind"] != "input"}
    assert {f"task-{t}" for t in drawn} <= ids


def test_text_report_lists_groups_placement_and_timeline():
    graph = optimize(EXAMPLES / "defects/defects.plan", options=BuildOptions(deploy="edge-x86-gpu")).graph
    model = cost_model(graph, "edge-x86-gpu")
    e = explain(graph, model)
    text = format_explanation(e)
    assert text.startswith("plan defects on edge-x86-gpu (cpu0=x86_64-avx2, gpu0=cuda-sm80, "
                           "io:alert=io, io:review=io)")
    for g in e.groups:
        assert g.device is not None and g.device in text
        best = min(g.seconds, key=lambda x: x[1])[0]
        assert math.isfinite(dict(g.seconds)[g.device]) and best in dict(e.devices)
    for s in e.slots:
        assert f"  {s.task} " in text
        lane = s.device.startswith("io:")  # a tool call or gate waits on its own lane, drawing nothing
        assert s.energy == (0.0 if lane else pytest.approx(model.energy(s.finish - s.start, s.device)))
        assert lane == (s.kind in (SlotKind.TOOL, SlotKind.GATE))
    kinds = {s.task: s.kind for s in e.slots}
    assert kinds["alert"] is SlotKind.TOOL and kinds["review"] is SlotKind.GATE and kinds["worst"] is SlotKind.BUILTIN
    assert f"HEFT {e.heft_makespan * 1e3:.3f}ms" in text
    placement = e.placement()
    assert sorted(t for ts in placement.values() for t in ts) == sorted(s.task for s in e.slots)


def test_loop_groups_name_their_loop():
    graph = optimize(EXAMPLES / "agent/agent.plan", options=BuildOptions(deploy="edge-x86-arm")).graph
    e = explain(graph, cost_model(graph, "edge-x86-arm"))
    loops = {t.name: t for t in graph.tasks() if isinstance(t, LoopTask)}
    inner = [g for g in e.groups if g.loop is not None]
    assert inner and all(g.loop in loops for g in inner)
    assert "(in loop refine)" in format_explanation(e)


def test_charts_are_deterministic(tmp_path, capsys):
    outs = []
    for run in ("a", "b"):
        assert main(_argv("defects/defects.plan", None, "edge-x86-gpu", "-o", str(tmp_path / run))) == 0
        outs.append(((tmp_path / f"{run}.png").read_bytes(), (tmp_path / f"{run}.svg").read_bytes()))
    capsys.readouterr()
    assert outs[0] == outs[1]
    png, svg = outs[0]
    assert b"Software" not in png and b"matplotlib" not in png.lower()
    assert b"<dc:date>" not in svg


def test_png_and_svg_separately(tmp_path, capsys):
    argv = _argv("sensors/sensors.plan", "sensors", "edge-x86-gpu", "--png", str(tmp_path / "sub" / "x.png"))
    assert main(argv) == 0
    assert (tmp_path / "sub" / "x.png").read_bytes()[:8] == PNG_MAGIC
    assert not list(tmp_path.glob("**/*.svg"))
    assert "wrote" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (_argv("defects/defects.plan", None, "edge-x86-gpx"), "did you mean 'edge-x86-gpu'?"),
    (_argv("sensors/sensors.plan", "vib_screen", "portable"), "has no device that can run this plan's targets"),
    (["explain", str(EXAMPLES / "sensors/sensors.plan"), "--deploy", "edge-avx2"], "choose one with --plan"),
    (_argv("defects/defects.plan", None, "edge-avx2", "--method", "fastest"), "unknown method 'fastest'"),
    (_argv("defects/defects.plan", None, "edge-avx2", "--profile", "/nonexistent/tuned.toml"), "no such file"),
], ids=["unknown-deploy", "no-device", "two-plans", "bad-method", "missing-profile"])
def test_bad_input_exits_1_without_traceback(argv, message, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "internal compiler error" not in err


def test_plan_errors_print_diagnostics_like_compile(tmp_path, capsys):
    bad = tmp_path / "bad.plan"
    bad.write_text("plan p {\n  input x: f32[2]\n  task y = nosuch(x)\n  output y\n}\n")
    assert main(["explain", str(bad), "--deploy", "edge-avx2"]) == 1
    explain_err = capsys.readouterr().err
    assert main(["compile", str(bad), "--emit", "schedule", "--deploy", "edge-avx2"]) == 1
    assert explain_err == capsys.readouterr().err
    assert "nosuch" in explain_err and "bad.plan:3:" in explain_err


def test_bounds_and_method_are_reported(capsys):
    # Every example: some lower bound, never above the objective's value, and the method named.
    for file, plan in PLANS:
        doc = _run_json(capsys, _argv(file, plan, "edge-x86-gpu", "--json", "--method", "cpsat",
                                      "--opt-time", "0.2"))
        b = doc["bounds"]
        value = {"energy": doc["totals"]["energy"], "throughput": doc["totals"]["period"]}.get(
            doc["objective"], doc["totals"]["makespan"])
        assert 0 < b["lower_bound"] <= value * (1 + 1e-9) and b["by"]
        assert b["solver"] in ("OPTIMAL", "FEASIBLE") and doc["method"] in ("cpsat", "ours")
        assert b["gap"] is not None and b["gap"] >= 0
    assert main(_argv("defects/defects.plan", None, "edge-x86-gpu")) == 0
    text = capsys.readouterr().out
    assert "method exact; solver not run; latency lower bound" in text and "proven optimal" in text


@pytest.mark.parametrize("value", ["-1", "soon", "inf"])
def test_bad_opt_time_is_a_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(_argv("defects/defects.plan", None, "edge-x86-gpu", "--opt-time", value))
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--opt-time" in err and "Traceback" not in err
