"""`planrt node start|stop|list|tune`: bring up Ray nodes labelled with what they can run.

`planrt node start` wraps `ray start`, adding the node labels the Ray engine places groups
by (CPU ISA and features, CUDA arch, memory: planc.runtime.ray.cluster), so a heterogeneous
cluster takes one command per machine. It records each node's process group so `planrt
node stop` stops exactly the processes it started (its Ray workers included).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from planc.runtime.host.detect import ENV_VAR, HostSpecError, detect, parse_host_spec
from planc.runtime.ray.cluster import ClusterError, describe_nodes, node_labels

__all__ = ["NodeStart", "add_parser", "node_processes", "ray_start_argv", "run", "stop_processes"]

DEFAULT_TEMP_DIR = "/tmp/ray"  # ray start's own default


@dataclass(frozen=True, slots=True)
class NodeStart:
    """What `ray start` gets for one node."""

    labels: Mapping[str, str]
    head: bool = False
    address: str | None = None  # the head's HOST:PORT, for a worker node
    port: int = 6379
    node_ip: str | None = None
    num_cpus: int | None = None
    num_gpus: int | None = None
    object_store_memory: int | None = None
    temp_dir: str | None = None
    extra: tuple[str, ...] = field(default=())


def ray_start_argv(spec: NodeStart, python: str = sys.executable) -> list[str]:
    """The `ray start` command line for `spec` (pure; `--block` is never added: ray start daemonizes)."""
    if spec.head == (spec.address is not None):
        raise ValueError("a node is either the head (--head) or joins one (--address HEAD:PORT)")
    argv = [python, "-m", "ray.scripts.scripts", "start"]
    argv += ["--head", "--port", str(spec.port), "--include-dashboard", "false"] if spec.head else \
        ["--address", str(spec.address)]
    for flag, value in (("--node-ip-address", spec.node_ip), ("--num-cpus", spec.num_cpus),
                        ("--num-gpus", spec.num_gpus), ("--object-store-memory", spec.object_store_memory),
                        ("--temp-dir", spec.temp_dir)):
        if value is not None:
            argv += [flag, str(value)]
    argv += ["--labels", ",".join(f"{k}={v}" for k, v in spec.labels.items()), "--disable-usage-stats"]
    return argv + list(spec.extra)


# ------------------------------------------------------------------ processes

def _proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, state) for every process (Linux /proc)."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def node_processes(pgid: int) -> set[int]:
    """The live processes of the node started in process group `pgid`: the group, and every
    descendant of it (Ray's workers put themselves in process groups of their own)."""
    table = _proc_table()
    found = {pid for pid, (_, group, _) in table.items() if group == pgid}
    grew = True
    while grew:
        more = {pid for pid, (parent, _, _) in table.items() if parent in found} - found
        grew = bool(more)
        found |= more
    return {pid for pid in found if table[pid][2] != "Z"}  # a zombie is dead, only not yet reaped


def stop_processes(pids: set[int], *, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL for whatever is left after `grace` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 0.0)):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(_running(p) for p in pids):
            time.sleep(0.1)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


# ------------------------------------------------------------------ commands

def _state_dir(temp_dir: str | None) -> Path:
    return Path(temp_dir or DEFAULT_TEMP_DIR) / "planrt-nodes"


def _labels(args: argparse.Namespace) -> tuple[dict[str, str], dict[str, str]]:
    """The node's labels, and the environment its processes get (PLANRT_HOST for --host)."""
    env = dict(os.environ)
    host = parse_host_spec(args.host) if args.host else detect()
    if args.host:
        env[ENV_VAR] = args.host  # the node's workers detect what its labels say
    labels = node_labels(host, args.name)
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"bad --label '{item}': expected KEY=VALUE")
        labels[key] = value
    return labels, env


def start(args: argparse.Namespace) -> int:
    try:
        labels, env = _labels(args)
        spec = NodeStart(labels, head=args.head, address=args.address, port=args.port, node_ip=args.node_ip_address,
                         num_cpus=args.num_cpus, num_gpus=args.num_gpus,
                         object_store_memory=args.object_store_memory, temp_dir=args.temp_dir,
                         extra=tuple(args.ray_args))
        argv = ray_start_argv(spec)
    except (ValueError, HostSpecError) as e:
        return _fail(str(e))
    if args.dry_run:
        print(" ".join(argv))
        return 0
    from planc.runtime.ray.engine import import_ray

    try:
        import_ray()
    except ClusterError as e:
        return _fail(str(e))
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stdin=subprocess.DEVNULL,
                            stdout=None if args.verbose else subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = proc.communicate()
    if proc.returncode != 0:
        return _fail(f"ray start failed (exit {proc.returncode}):\n{(out or '').strip()}")
    state = {"name": args.name, "pgid": proc.pid, "head": args.head, "labels": labels,
             "address": f"{args.node_ip_address or socket.gethostname()}:{args.port}" if args.head else args.address}
    folder = _state_dir(args.temp_dir)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{args.name}.json").write_text(json.dumps(state, indent=1))
    print(f"planrt: node '{args.name}' started ({'head, ' if args.head else ''}cluster {state['address']})")
    print("labels: " + " ".join(f"{k}={v}" for k, v in labels.items()))
    return 0


def stop(args: argparse.Namespace) -> int:
    folder = _state_dir(args.temp_dir)
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if args.name:
        files = [f for f in files if f.stem in args.name]
        missing = set(args.name) - {f.stem for f in files}
        if missing:
            return _fail(f"no node named {', '.join(sorted(missing))} was started here with `planrt node start` "
                         f"(state in {folder})")
    # Worker nodes first: a head that goes first leaves its workers reconnecting.
    for file in sorted(files, key=lambda f: json.loads(f.read_text()).get("head", False)):
        state = json.loads(file.read_text())
        pids = node_processes(int(state["pgid"]))
        stop_processes(pids)
        file.unlink()
        print(f"planrt: node '{state['name']}' stopped ({len(pids)} processes)")
    return 0


def list_nodes(args: argparse.Namespace) -> int:
    from planc.runtime.ray.engine import connect, live_nodes

    try:
        ray = connect(args.address)
    except ClusterError as e:
        return _fail(str(e))
    try:
        nodes = live_nodes(ray)
        if args.json:
            print(json.dumps([{"name": n.name, "node_id": n.node_id, "address": n.address, "labels": n.labels}
                              for n in nodes], indent=1))
        else:
            print(describe_nodes(nodes))
        return 0
    finally:
        ray.shutdown()


def tune(args: argparse.Namespace) -> int:
    from planc.runtime.ray.tune import measure, write_deployment

    try:
        costs = measure(args.address, calls=args.calls)
    except ClusterError as e:
        return _fail(str(e))
    path = write_deployment(costs, args.output, name=args.deployment)
    print(costs.summary())
    print(f"planrt: wrote {path}; compile for this cluster with `planc compile PLAN --deploy {path}`")
    return 0


def _fail(msg: str) -> int:
    print(f"planrt: error: {msg}", file=sys.stderr)
    return 1


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("node", help="start, stop, list and measure Ray nodes for `planrt run --engine ray`",
                       description="Ray nodes labelled with what they can run (docs/ray.md).")
    nsub = p.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    s = nsub.add_parser("start", help="start a Ray node (ray start) with planc's capability labels")
    where = s.add_mutually_exclusive_group(required=True)
    where.add_argument("--head", action="store_true", help="start the cluster's head node")
    where.add_argument("--address", metavar="HEAD:PORT", help="join the cluster whose head is at HEAD:PORT")
    s.add_argument("--name", default=socket.gethostname().split(".")[0],
                   help="the node's planc name, unique in the cluster (default: the host name)")
    s.add_argument("--host", metavar="SPEC", help="capabilities instead of detecting them, as PLANRT_HOST "
                   "(e.g. x86_64:x86-64-v3); the node's workers get PLANRT_HOST=SPEC")
    s.add_argument("--port", type=int, default=6379, help="the head's port (default 6379)")
    s.add_argument("--node-ip-address", metavar="IP", help="this node's address as the cluster sees it")
    s.add_argument("--num-cpus", type=int)
    s.add_argument("--num-gpus", type=int)
    s.add_argument("--object-store-memory", type=int, metavar="BYTES")
    s.add_argument("--temp-dir", metavar="DIR", help=f"Ray's temp dir (default {DEFAULT_TEMP_DIR})")
    s.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="an extra node label")
    s.add_argument("--dry-run", action="store_true", help="print the ray start command and exit")
    s.add_argument("--verbose", "-v", action="store_true", help="show ray start's output")
    s.add_argument("ray_args", nargs=argparse.REMAINDER, help="after --: more `ray start` options")
    s.set_defaults(node_handler=start)
    t = nsub.add_parser("stop", help="stop nodes started here with `planrt node start`")
    t.add_argument("--name", action="append", help="the node to stop (repeat; default: all started here)")
    t.add_argument("--temp-dir", metavar="DIR", help=f"Ray's temp dir given at start (default {DEFAULT_TEMP_DIR})")
    t.set_defaults(node_handler=stop)
    ls = nsub.add_parser("list", help="the cluster's live nodes and what they can run")
    ls.add_argument("--address", metavar="HEAD:PORT")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(node_handler=list_nodes)
    u = nsub.add_parser("tune", help="measure the Ray engine's dispatch and transfer costs; write a deployment "
                        "for `planc compile --deploy`")
    u.add_argument("--address", metavar="HEAD:PORT")
    u.add_argument("-o", "--output", default="ray-cluster.toml", help="the deployment file (default ray-cluster.toml)")
    u.add_argument("--deployment", default="ray-cluster", help="the deployment's name (default ray-cluster)")
    u.add_argument("--calls", type=int, default=200, help="round trips per measurement (default 200)")
    u.set_defaults(node_handler=tune)
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    if getattr(args, "ray_args", None) and args.ray_args[0] == "--":
        args.ray_args = args.ray_args[1:]
    return int(args.node_handler(args))

