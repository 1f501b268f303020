"""The Ray engine: `planrt run --engine ray` computes a bundle's groups on an existing Ray cluster.

The driver (this process) keeps everything with side effects or state: the executor, the
journal, tools, gates, retries, breakers and the trace. Only compute goes to Ray: every
group runs on a node that can run one of its variants (cluster.place), in one long-lived
actor per (node, device) that loaded the group's module once (ray_actor.ModuleHost). A
group's outputs stay in Ray's object store and move node to node; the driver fetches one
only when something on the driver needs it (a builtin, a tool, the journal, an output).

Ray's own retries are off (actors are never restarted, tasks never resubmitted): when a
node dies, this engine moves its groups to another capable node and reissues the call
(compute is pure); with no capable node left the run fails with a message saying so, and
`planrt resume` continues it later. `import ray` happens only here, and only when the
engine is used: Ray is the optional extra `planc[ray]`.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from planc.runtime.bundle.loader import Bundle
from planc.runtime.contract.manifest import Task
from planc.runtime.engine.executor import RunFailed
from planc.runtime.engine.values import Value
from planc.runtime.ray.cluster import (
    LABEL_ISA,
    ClusterError,
    Node,
    PlacementError,
    Slot,
    describe_nodes,
    place,
)

__all__ = [
    "RAY_EXTRA", "CallRecord", "ClusterUnreachable", "RayEngine", "RayNotInstalled", "RayValue", "connect",
    "import_ray", "live_nodes",
]

log = logging.getLogger(__name__)

RAY_EXTRA = "pip install 'planc[ray]'"
READY_TIMEOUT_S = 120.0
INLINE_BYTES = 64 * 1024  # a host argument up to this size goes inside the call, not through ray.put  # a node's first actor: worker start-up plus loading its modules


class RayNotInstalled(ClusterError):
    """`--engine ray` without Ray installed."""


class ClusterUnreachable(ClusterError):
    """No Ray cluster answers at the address, or it refused this driver."""


def import_ray() -> Any:
    """The `ray` module, or RayNotInstalled saying how to install it."""
    try:
        import ray
    except ImportError as e:
        raise RayNotInstalled(f"the Ray engine needs Ray, an optional extra of planc: {RAY_EXTRA} "
                              f"(ray>=2.60,<3); this Python cannot import it ({e})") from None
    return ray


def _split(address: str) -> tuple[str, int] | None:
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    return (host.strip("[]"), int(port)) if sep and port.isdigit() else None


def connect(address: str | None = None) -> Any:
    """Joins the Ray cluster at `address` (HOST:PORT of its head; None: $RAY_ADDRESS or the
    cluster this machine last started) as a driver. Never starts a cluster of its own."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    addr = address or os.environ.get("RAY_ADDRESS") or "auto"
    kwargs: dict[str, Any] = {"address": addr, "logging_level": logging.ERROR, "log_to_driver": False,
                              "namespace": "planrt"}
    hp = _split(addr)
    if hp is not None:
        _probe(addr, hp)
        if hp[0].startswith("127.") and hp[0] != "127.0.0.1":
            kwargs["_node_ip_address"] = hp[0]  # a loopback cluster: join its head as its local driver
    try:
        ray.init(**kwargs)
    except ray.exceptions.AuthenticationError as e:
        raise ClusterUnreachable(f"the Ray cluster at {addr} refused this driver's token: {e}; give it the "
                                 "cluster's token (RAY_AUTH_MODE=token with RAY_AUTH_TOKEN or "
                                 "RAY_AUTH_TOKEN_PATH)") from None
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ClusterUnreachable(f"cannot join a Ray cluster at {addr}: {first}\n"
                                 "start one with `planrt node start --head` (and `planrt node start "
                                 "--address HEAD:PORT` on every other machine)") from None
    return ray


def _probe(addr: str, hp: tuple[str, int]) -> None:
    try:
        socket.create_connection(hp, timeout=5.0).close()
    except OSError as e:
        raise ClusterUnreachable(f"no Ray cluster answers at {addr}: {e.strerror or e}; start one with "
                                 "`planrt node start --head`, or pass the head's --address") from None


def live_nodes(ray: Any, lost: Mapping[str, str] | None = None) -> list[Node]:
    """The cluster's live nodes (those this engine saw die excluded), by name."""
    lost = lost or {}
    return sorted((Node.from_ray(i) for i in ray.nodes() if i.get("Alive") and i.get("NodeID") not in lost),
                  key=lambda n: n.name)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One group call on the cluster, for the trace and the run summary."""

    task: str
    module: str
    node: str
    cpu_isa: str
    target: str
    pid: int
    seconds: float


@dataclass(eq=False)
class RayValue(Value):
    """A group output in Ray's object store; fetched to the host once, on first need."""

    ref: Any = None
    node_id: str = ""
    engine: Any = None
    origin: Any = None  # (task, args, index): how to compute it again if its node dies
    siblings: Any = None  # the other outputs of the same call

    def to_host(self) -> Any:
        if self.host is None:  # type: ignore[has-type]
            self.host = self.engine.fetch(self)
        return self.host


class RayEngine:
    """A bundle's groups placed on the cluster's nodes, with their actors and modules loaded."""

    def __init__(self, bundle: Bundle, *, address: str | None = None, deployment: str | None = None,
                 ready_timeout: float = READY_TIMEOUT_S):
        self.ray = connect(address)
        self.bundle = bundle
        self.modules: Mapping[str, Any] = bundle.manifest["modules"]
        self.schedule = _schedule(bundle.manifest, deployment)
        self.ready_timeout = ready_timeout
        self.calls: list[CallRecord] = []
        self._lock = threading.RLock()
        self._lost: dict[str, str] = {}
        self._actors: dict[tuple[str, str], Any] = {}
        self._loaded: dict[tuple[str, str], dict[str, str]] = {}
        self._blobs: dict[tuple[str, str], Any] = {}
        self._puts: dict[int, tuple[Value, Any]] = {}
        self._remote_cls: Any = None
        self._max_moves = 2 * len(self.ray.nodes()) + 2  # node losses one call survives
        self.slots: dict[str, Slot] = place(self.modules, live_nodes(self.ray), self.schedule)
        self._ready(sorted(self.slots))

    # ------------------------------------------------------------------ public
    @property
    def variants(self) -> dict[str, str]:
        return {m: s.target for m, s in sorted(self.slots.items())}

    def placement(self) -> dict[str, dict[str, str]]:
        """Module -> where it runs now (node, its cpu-isa label, device, variant)."""
        return {m: {"node": s.node.name, "cpu_isa": s.node.isa, "device": s.device, "variant": s.target}
                for m, s in sorted(self.slots.items())}

    def service(self, tracer: Any = None) -> Callable[[Mapping[str, Any], list[Value]], list[Value]]:
        """The executor's compute service for one run."""
        return functools.partial(self.compute, tracer=tracer)

    def close(self) -> None:
        for actor in self._actors.values():
            try:
                self.ray.kill(actor)
            except Exception as e:  # noqa: BLE001 - an actor on a dead node is gone already
                log.debug("actor already gone: %s", e)
        self._actors.clear()
        self.ray.shutdown()

    # ------------------------------------------------------------------ compute
    def compute(self, task: Task, args: list[Value], *, tracer: Any = None) -> list[Value]:
        module, name = str(task.module), task.name
        types = [t["dtype"] for t in self.modules[module]["outputs"]]
        exc = self.ray.exceptions
        for _ in range(self._max_moves):
            slot = self._slot(module, name)
            start = time.perf_counter()
            try:
                actor = self._actor(slot)
                refs = actor.invoke.options(num_returns=1 + len(types)).remote(
                    module, *[self._arg(a, name) for a in args])
                meta = self.ray.get(refs[0])
            except (exc.RayActorError, exc.ActorUnschedulableError, exc.NodeDiedError, exc.WorkerCrashedError,
                    exc.GetTimeoutError) as e:
                self._lose(slot.node, f"{type(e).__name__} while running '{name}'", tracer)
                continue
            except exc.ObjectLostError:
                self._check_nodes(tracer)  # an input lived on a node that is gone: fetch or rebuild it
                continue
            except exc.RayTaskError as e:
                raise RunFailed(name, f"group '{module}' failed on node '{slot.node.name}': "
                                      f"{_cause(e)}") from None
            self._record(name, slot, start, meta, tracer)
            outs = [RayValue(dt, ref=r, node_id=slot.node.node_id, engine=self, origin=(task, list(args), i))
                    for i, (dt, r) in enumerate(zip(types, refs[1:]))]
            for v in outs:
                v.siblings = outs  # fetched together: one round trip for all of a call's outputs
            return outs
        raise RunFailed(name, f"group '{module}' lost its node too many times; nodes now:\n"
                              f"{describe_nodes(live_nodes(self.ray, self._lost))}")

    def fetch(self, value: RayValue) -> np.ndarray:
        """A value's host copy (with its siblings'); rebuilt from its inputs when the node that held it died."""
        try:
            pending = [v for v in value.siblings or [value] if v.host is None and v is not value]
            arrays = self.ray.get([value.ref, *(v.ref for v in pending)])
            for v, a in zip(pending, arrays[1:]):
                v.host = np.array(a, copy=True)
            return np.array(arrays[0], copy=True)
        except self.ray.exceptions.ObjectLostError:
            self._check_nodes(None)
            task, args, index = value.origin
            fresh = self.compute(task, args)[index]
            return np.array(self.ray.get(fresh.ref), copy=True)

    # ----------------------------------------------------------------- internal
    def _arg(self, a: Value, task: str) -> Any:
        if isinstance(a, RayValue):
            if a.node_id not in self._lost:
                return a.ref
            return a.to_host()  # its node died: the host copy, or a rebuild from its inputs
        host = np.asarray(a.to_host())
        if host.nbytes <= INLINE_BYTES:
            return host  # travels inside the call itself
        with self._lock:
            hit = self._puts.get(id(a))
            if hit is None or hit[0] is not a:
                hit = self._puts[id(a)] = (a, self.ray.put(host))
        return hit[1]

    def _slot(self, module: str, task: str) -> Slot:
        with self._lock:
            slot = self.slots[module]
            if slot.node.node_id not in self._lost:
                return slot
            try:
                load: dict[str, int] = {}
                for s in self.slots.values():
                    load[s.node.node_id] = load.get(s.node.node_id, 0) + 1
                slot = place(self.modules, live_nodes(self.ray, self._lost), self.schedule,
                             only=[module], load=load)[module]
            except PlacementError as e:
                gone = self.slots[module].node
                msg = (f"node '{gone.name}' was lost ({self._lost[gone.node_id]}) and {e}\n"
                       "resume the run (`planrt resume RUN_DIR`) once a capable node is up")
                raise RunFailed(task, msg) from None
            log.warning("group '%s' moves to node '%s' (%s)", module, slot.node.name, slot.target)
            self.slots[module] = slot
            return slot

    def _actor(self, slot: Slot) -> Any:
        key = (slot.node.node_id, slot.device)
        with self._lock:
            actor = self._actors.get(key)
            if actor is None:
                actor = self._actors[key] = self._new_actor(slot)
                self._loaded[key] = {}
            if self._loaded[key].get(slot.module) == slot.target:
                return actor
            ref = self._load(actor, slot)
        info = self.ray.get(ref, timeout=self.ready_timeout)
        with self._lock:
            self._loaded[key][slot.module] = slot.target
        log.info("module '%s' (%s) loaded on node '%s', pid %s", slot.module, slot.target, slot.node.name,
                 info["pid"])
        return actor

    def _new_actor(self, slot: Slot) -> Any:
        if self._remote_cls is None:
            from planc.runtime.ray.actor import ModuleHost

            self._remote_cls = self.ray.remote(ModuleHost)
        selector = {"ray.io/node-id": slot.node.node_id, LABEL_ISA: slot.node.isa}
        return self._remote_cls.options(
            num_cpus=0, num_gpus=1 if slot.device == "gpu" else 0, max_restarts=0, max_task_retries=0,
            max_concurrency=4, label_selector=selector,
        ).remote(slot.driver, slot.node.name)

    def _load(self, actor: Any, slot: Slot) -> Any:
        mod = self.modules[slot.module]
        variant = mod["variants"][slot.target]
        blob = self._blobs.get((slot.module, slot.target))
        if blob is None:
            blob = self._blobs[(slot.module, slot.target)] = self.ray.put(self.bundle.read(variant["path"]))
        params, scope = None, "planc"
        if mod.get("parameters"):  # the bundle's weights, put in the object store once
            spec = self.bundle.manifest["parameters"]
            if self._blobs.get(("", "parameters")) is None:
                # as a numpy array: workers get it zero-copy from the object store, 64-byte aligned, so
                # IREE imports the weights in place (bytes would arrive unaligned and be copied per module)
                self._blobs[("", "parameters")] = self.ray.put(np.frombuffer(self.bundle.read(spec["path"]), np.uint8))
            params, scope = self._blobs[("", "parameters")], spec.get("scope", "planc")
        return actor.load.remote(slot.module, slot.target, dict(variant), blob,
                                 [t["dtype"] for t in mod["inputs"]], [t["dtype"] for t in mod["outputs"]],
                                 params, scope)

    def _ready(self, modules: list[str]) -> None:
        """Creates every actor and loads every module up front, so a bad node fails the start,
        not the run. A node that turns out dead meanwhile gives its groups to another node."""
        exc = self.ray.exceptions
        for module in modules:
            for _ in range(self._max_moves):
                try:
                    slot = self._slot(module, module)
                except RunFailed as failed:
                    raise ClusterError(str(failed).split(": ", 1)[1]) from None
                try:
                    self._actor(slot)
                    break
                except exc.GetTimeoutError:
                    raise ClusterError(f"node '{slot.node.name}' did not start planrt's worker for '{module}' "
                                       f"within {self.ready_timeout:.0f} s; is planc installed there, in the same "
                                       "Python version?") from None
                except exc.RayTaskError as e:
                    raise ClusterError(f"node '{slot.node.name}' cannot load '{module}': {_cause(e)}") from None
                except (exc.RayActorError, exc.ActorUnschedulableError) as e:
                    if any(i.get("NodeID") == slot.node.node_id and i.get("Alive") for i in self.ray.nodes()):
                        raise ClusterError(f"planrt's worker on node '{slot.node.name}' died while loading "
                                           f"'{module}': {_cause(e)}") from None
                    self._lose(slot.node, "dead when the run started", None)  # the next turn places it again

    def _lose(self, node: Node, why: str, tracer: Any) -> None:
        with self._lock:
            if node.node_id in self._lost:
                return
            self._lost[node.node_id] = why
            for key in [k for k in self._actors if k[0] == node.node_id]:
                del self._actors[key]
                self._loaded.pop(key, None)
        log.warning("node '%s' lost: %s", node.name, why)
        if tracer is not None:
            tracer.instant("node lost", category="ray", lane="ray", args={"node": node.name, "why": why})

    def _check_nodes(self, tracer: Any) -> None:
        alive = {i["NodeID"] for i in self.ray.nodes() if i.get("Alive")}
        for slot in list(self.slots.values()):
            if slot.node.node_id not in alive:
                self._lose(slot.node, "marked dead by the cluster", tracer)

    def _record(self, task: str, slot: Slot, start: float, meta: Mapping[str, Any], tracer: Any) -> None:
        elapsed = time.perf_counter() - start
        rec = CallRecord(task, slot.module, slot.node.name, slot.node.isa, str(meta["target"]), int(meta["pid"]),
                         float(meta["seconds"]))
        with self._lock:
            self.calls.append(rec)
        if tracer is not None:
            tracer.add_slice(task, tracer.clock.now() - elapsed, elapsed, category="ray", lane=f"ray:{slot.node.name}",
                             args={"module": slot.module, "node": slot.node.name, "node_id": slot.node.node_id,
                                   "cpu_isa": slot.node.isa, "device": slot.device, "variant": rec.target,
                                   "pid": rec.pid, "remote_seconds": rec.seconds,
                                   "worker_host": meta.get("planrt_host") or meta.get("host")})


def _schedule(manifest: Mapping[str, Any], deployment: str | None) -> Mapping[str, Any] | None:
    schedules = manifest.get("schedules") or {}
    if deployment is not None:
        if deployment not in schedules:
            raise ClusterError(f"the bundle has no schedule for deployment '{deployment}' "
                               f"(it has: {', '.join(sorted(schedules)) or 'none'})")
        return schedules[deployment]
    return next(iter(schedules.values())) if len(schedules) == 1 else None


def _cause(e: Exception) -> str:
    cause = getattr(e, "cause", None) or e
    text = str(cause).strip().splitlines()
    return text[-1] if text else type(cause).__name__
