"""The schedule pass: tool calls and gates wait on their own I/O lanes, so they overlap."""

from __future__ import annotations

from pathlib import Path

from planc.compiler.bundle.build import BuildOptions, optimize

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_independent_tool_calls_overlap_in_the_prediction():
    s = optimize(EXAMPLES / "agent/agent.plan", options=BuildOptions(deploy="edge-x86-gpu")).graph.info.schedule
    slots = {x.task: x for x in s.slots}
    page, reply = slots["page"], slots["reply"]
    assert page.device == "io:page" and reply.device == "io:reply"
    assert page.start < reply.finish and reply.start < page.finish  # they run at the same time
    assert dict(s.devices)["io:page"] == "io"
    # compute never lands on an I/O lane
    assert all(not x.device.startswith("io:") for x in s.slots if x.task.startswith("g"))


def test_without_lanes_tools_queue_on_the_host():
    from planc.compiler.passes import Build, InferTypes, Merge, Schedule, Verify
    from planc.compiler.pipeline import PipelineOptions, run_pipeline
    from planc.dsl.parser import parse_file

    plan = parse_file(EXAMPLES / "agent/agent.plan").plans[0]
    passes = (Build(), Verify(), InferTypes(), Merge(deploy="edge-x86-gpu"),
              Schedule(deploy="edge-x86-gpu", io_lanes=False))
    s = run_pipeline(plan, passes, PipelineOptions()).graph.info.schedule
    slots = {x.task: x for x in s.slots}
    assert slots["page"].device == slots["reply"].device == "cpu0"
    with_lanes = optimize(EXAMPLES / "agent/agent.plan", options=BuildOptions(deploy="edge-x86-gpu"))
    assert with_lanes.graph.info.schedule.makespan < s.makespan
