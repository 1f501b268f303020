"""The deployment records a profile holds: device kinds and their peaks, links, connections, deployments."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from planc.compiler.codegen.targets import Target
from planc.dsl.diagnostics import did_you_mean

from planc.enums import TextEnum

__all__ = [
    "DTYPE_FALLBACK",
    "SCHEMA",
    "Connection",
    "Deployment",
    "DeviceClass",
    "DeviceInstance",
    "DeviceSpec",
    "Link",
    "ProfileError",
]

SCHEMA = 1

# Peaks a profile need not list: the dtype runs at the rate of another one, scaled.
DTYPE_FALLBACK: Mapping[str, tuple[str, float]] = MappingProxyType(
    {"i32": ("f32", 1.0), "i64": ("f32", 0.5), "bool": ("i8", 1.0)}
)


class ProfileError(ValueError):
    """A profile file is missing, malformed or inconsistent: names the file, the key and the problem."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        super().__init__(f"{file}: {key}: {problem}")
        self.file = file
        self.key = key
        self.problem = problem


class DeviceClass(TextEnum, noun="device class"):
    CPU = "cpu"
    GPU = "gpu"


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One kind of device, in SI units: FLOP/s, bytes/s, seconds, bytes, watts."""

    name: str
    target: Target
    device_class: DeviceClass
    peak_flops: Mapping[str, float]
    mem_bandwidth: float
    dispatch_overhead: float
    memory_bytes: float
    power_idle_w: float
    power_busy_w: float
    description: str = ""

    def peak(self, dtype: str) -> float:
        """Peak operations per second for `dtype`; i32, i64 and bool fall back per DTYPE_FALLBACK."""
        if dtype in self.peak_flops:
            return self.peak_flops[dtype]
        if dtype in DTYPE_FALLBACK:
            base, scale = DTYPE_FALLBACK[dtype]
            return self.peak(base) * scale
        raise ValueError(f"device '{self.name}' has no peak for dtype '{dtype}'")


@dataclass(frozen=True, slots=True)
class Link:
    """A kind of link between two devices: bandwidth in bytes/s, latency in seconds."""

    name: str
    bandwidth: float
    latency: float
    description: str = ""

    def time(self, nbytes: float) -> float:
        return self.latency + nbytes / self.bandwidth


@dataclass(frozen=True, slots=True)
class Connection:
    """A link between two device instances of a deployment (both directions)."""

    a: str
    b: str
    link: Link


@dataclass(frozen=True, slots=True)
class DeviceInstance:
    """A named device of a deployment (`gpu0`) and its kind (`cuda-sm80`)."""

    name: str
    spec: DeviceSpec

    @property
    def kind(self) -> str:
        return self.spec.name


@dataclass(frozen=True, slots=True)
class Deployment:
    """Device instances, the links between them, the host that runs tools, and the site's PUE."""

    name: str
    devices: tuple[DeviceInstance, ...]
    host: str
    connections: tuple[Connection, ...] = ()
    pue: float = 1.0
    description: str = ""
    source: str = "<memory>"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.devices)

    def device(self, name: str) -> DeviceInstance:
        for dev in self.devices:
            if dev.name == name:
                return dev
        hint = did_you_mean(name, self.names)
        raise ProfileError(self.source, f"deployments.{self.name}.devices",
                           f"no device '{name}'{', ' + hint if hint else ''} (devices: {', '.join(self.names)})")

    def route(self, a: str, b: str) -> tuple[Link, ...]:
        """The links a transfer from `a` to `b` crosses: the direct link, else the fewest hops."""
        self.device(a)
        self.device(b)
        prev: dict[str, tuple[str, Link] | None] = {a: None}
        queue = deque([a])
        while queue and b not in prev:
            here = queue.popleft()
            for c in self.connections:
                for x, y in ((c.a, c.b), (c.b, c.a)):
                    if x == here and y not in prev:
                        prev[y] = (here, c.link)
                        queue.append(y)
        if b not in prev:
            raise ProfileError(self.source, f"deployments.{self.name}.links", f"no route from '{a}' to '{b}'")
        hops: list[Link] = []
        node = b
        while (step := prev[node]) is not None:
            node, link = step
            hops.append(link)
        return tuple(reversed(hops))
