"""The Ray engine's parts that need no cluster: labels, placement, `ray start` argv, process
groups, the tuned deployment file, and the errors for a missing Ray or an unreachable cluster."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
from planc.runtime.host.detect import CudaDevice, Host, parse_host_spec
from planc.runtime.ray.cluster import (
    LABEL_FEATURE,
    LABEL_ISA,
    LABEL_NODE,
    Node,
    PlacementError,
    cpu_isa,
    host_from_labels,
    node_labels,
    place,
)
from planc.runtime.ray.node import NodeStart, node_processes, ray_start_argv, stop_processes

AVX2_HOST = parse_host_spec("x86_64:x86-64-v3")
AVX512_HOST = parse_host_spec("x86_64:x86-64-v4,avx512vnni")
NEON_HOST = parse_host_spec("aarch64:neon")
X86 = {"x86_64-avx2": {}, "x86_64-avx512": {}}


def _node(name: str, host: Host) -> Node:
    labels = node_labels(host, name, memory_bytes=16 * 2**30)
    return Node.from_ray({"NodeID": f"id-{name}", "NodeManagerAddress": "127.0.0.9", "Labels": labels})


@pytest.mark.parametrize("host,isa", [(AVX2_HOST, "avx2"), (AVX512_HOST, "avx512"), (NEON_HOST, "neon"),
                                      (parse_host_spec("x86_64:x86-64-v2"), "sse4.2"),
                                      (parse_host_spec("riscv64:v"), "riscv64")])
def test_labels_describe_the_host_and_read_back(host, isa):
    labels = node_labels(host, "n0", memory_bytes=3 * 2**30)
    assert labels[LABEL_ISA] == isa == cpu_isa(host)
    assert labels[LABEL_NODE] == "n0" and labels["planc/memory-gib"] == "3"
    back = host_from_labels(labels)
    assert back is not None and back.arch == host.arch and back.features == host.features


def test_labels_carry_features_beyond_the_level_and_cuda():
    host = Host("x86_64", AVX512_HOST.features, (CudaDevice(0, "a100", (8, 0)), CudaDevice(1, "a100", (8, 0))))
    labels = node_labels(host, "gpu-box", memory_bytes=2**30)
    assert labels[LABEL_FEATURE + "avx512vnni"] == "1" and LABEL_FEATURE + "avx2" not in labels
    assert labels["planc/cuda-sm"] == "80" and labels["planc/cuda-devices"] == "2"
    back = host_from_labels(labels)
    assert back.cuda_sm == 80 and len(back.cuda) == 2


def test_a_bad_node_name_is_named():
    with pytest.raises(ValueError, match="node name 'a b' is not a valid label value"):
        node_labels(AVX2_HOST, "a b")


def test_a_node_without_planc_labels_is_never_placed():
    bare = Node.from_ray({"NodeID": "abcdef0123456789", "NodeManagerAddress": "10.0.0.1", "Labels": {}})
    assert bare.host is None and "no planc labels" in bare.describe()
    with pytest.raises(PlacementError, match="no planc labels"):
        place({"g0": {"variants": X86}}, [bare])


def test_placement_follows_the_schedule_by_node_name_then_by_kind():
    nodes = [_node("n0", AVX2_HOST), _node("n1", AVX512_HOST)]
    mods = {g: {"variants": X86} for g in ("g0", "g1", "g2")}
    by_name = {"devices": {"n0": "x86_64-avx2", "n1": "x86_64-avx512"}, "placement": {"g0": "n0", "g1": "n1"}}
    slots = place(mods, nodes, by_name)
    assert (slots["g0"].node.name, slots["g0"].target) == ("n0", "x86_64-avx2")
    assert (slots["g1"].node.name, slots["g1"].target) == ("n1", "x86_64-avx512")
    assert slots["g2"].node.name == "n1", "unscheduled: the best variant wins"
    by_kind = {"devices": {"cpu0": "x86_64-avx2"}, "placement": {"g0": "cpu0", "g1": "cpu0"}}
    slots = place(mods, nodes, by_kind)
    assert [slots[g].node.name for g in ("g0", "g1")] == ["n0", "n0"]
    assert all(s.device == "cpu" and s.driver == "local-sync" for s in slots.values())


def test_equal_nodes_share_the_groups():
    nodes = [_node("a", AVX512_HOST), _node("b", AVX512_HOST)]
    slots = place({g: {"variants": X86} for g in ("g0", "g1", "g2", "g3")}, nodes)
    assert sorted(s.node.name for s in slots.values()) == ["a", "a", "b", "b"]
    moved = place({"g0": {"variants": X86}}, nodes[1:], only=["g0"], load={"id-b": 3})
    assert moved["g0"].node.name == "b"


def test_no_capable_node_names_needs_and_nodes():
    with pytest.raises(PlacementError) as e:
        place({"g7": {"variants": {"aarch64-neon": {}, "cuda-sm80": {}}}}, [_node("n0", AVX2_HOST)])
    msg = str(e.value)
    assert "no node can run group 'g7': it needs one of: aarch64-neon (aarch64 cpu-isa=neon); " \
           "cuda-sm80 (cuda sm_80 or newer)" in msg
    assert "n0 (127.0.0.9): x86_64 cpu-isa=avx2" in msg


def test_ray_start_argv():
    labels = {"planc/node": "n0", "planc/cpu-isa": "avx2"}
    head = ray_start_argv(NodeStart(labels, head=True, port=7000, num_cpus=1, temp_dir="/tmp/x"), python="py")
    assert head[:4] == ["py", "-m", "ray.scripts.scripts", "start"]
    assert head[4:8] == ["--head", "--port", "7000", "--include-dashboard"]
    assert "--num-cpus" in head and head[head.index("--labels") + 1] == "planc/node=n0,planc/cpu-isa=avx2"
    worker = ray_start_argv(NodeStart(labels, address="10.0.0.1:7000", extra=("--block",)), python="py")
    assert worker[4:6] == ["--address", "10.0.0.1:7000"] and worker[-1] == "--block" and "--head" not in worker
    for bad in (NodeStart(labels), NodeStart(labels, head=True, address="a:1")):
        with pytest.raises(ValueError, match="either the head"):
            ray_start_argv(bad)


def test_node_processes_follow_workers_into_their_own_process_groups():
    # A "node": a process group whose child moves itself into a new session, as Ray's workers do.
    code = "import os,subprocess,time; subprocess.Popen(['python3','-c','import os,time; os.setsid(); " \
           "time.sleep(60)']); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not _escaped(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        escaped = _escaped(proc.pid)
        assert escaped, "the child never left the process group"
        pids = node_processes(proc.pid)
        assert pids == {proc.pid, escaped}
        stop_processes(pids, grace=2.0)
        proc.wait(timeout=5)
        assert not node_processes(proc.pid)
    finally:
        if proc.poll() is None:
            proc.kill()


def _escaped(pgid: int) -> int | None:
    """A child of the group's leader that lives in another process group, once there is one."""
    for pid in node_processes(pgid) - {pgid}:
        try:
            if os.getpgid(pid) != pgid:
                return pid
        except ProcessLookupError:
            pass
    return None


def test_tuned_deployment_loads_in_the_compiler(tmp_path):
    from planc.compiler.costs.profiles import load_profile
    from planc.runtime.ray.tune import EngineCosts, NodeCost, write_deployment

    costs = EngineCosts("10.0.0.1:6379", "n0", (NodeCost("n0", "x86_64-avx2", ("cuda-sm80",), 31.0, 1.2e-3),
                                                NodeCost("n1", "x86_64-avx512", (), 62.0, 0.9e-3)),
                        (("n0", "n1", 2.5e-4, 1.1e9),))
    path = write_deployment(costs, tmp_path / "c.toml", name="mine")
    profile = load_profile()
    dep = profile.deployment(f"{path}:mine")
    assert {d.name: d.kind for d in dep.devices} == {"n0": "x86_64-avx2", "n0-gpu0": "cuda-sm80",
                                                     "n1": "x86_64-avx512"}
    merged = profile.with_file(path)
    assert merged.devices["x86_64-avx2"].dispatch_overhead == pytest.approx(1.21e-3)
    assert merged.devices["x86_64-avx2"].memory_bytes == 31 * 2**30
    assert merged.devices["x86_64-avx2"].peak("f32") == profile.devices["x86_64-avx2"].peak("f32")
    (link,) = dep.route("n0", "n1")
    assert link.latency == pytest.approx(2.5e-4) and link.bandwidth == pytest.approx(1.1e9)


def test_without_ray_installed_the_error_says_how_to_install(monkeypatch):
    from planc.runtime.ray.cluster import ClusterError
    from planc.runtime.ray.engine import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without the extra sees
    with pytest.raises(ClusterError, match=r"pip install 'planc\[ray\]'"):
        import_ray()


def test_planrt_without_ray_fails_clearly(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; from planc.runtime.cli import main; "
            " sys.exit(main(['node', 'list', '--address', '127.0.0.1:1']))")
    res = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert "planrt: error: the Ray engine needs Ray, an optional extra of planc: pip install 'planc[ray]'" \
        in res.stderr
    assert "Traceback" not in res.stderr


def test_an_unreachable_cluster_is_named():
    pytest.importorskip("ray")
    from planc.runtime.ray.engine import ClusterUnreachable, connect

    with socket.socket() as s:
        s.bind(("127.0.0.2", 0))
        port = s.getsockname()[1]  # nothing listens once the socket is closed
    with pytest.raises(ClusterUnreachable, match=f"no Ray cluster answers at 127.0.0.2:{port}"):
        connect(f"127.0.0.2:{port}")


def test_unknown_engine_lists_the_known_ones():
    from planc.runtime.engine.runner import RunConfig, _remote_engine

    with pytest.raises(ValueError, match="unknown engine 'spark', expected one of: local, ray"):
        _remote_engine(None, RunConfig(engine="spark"))
