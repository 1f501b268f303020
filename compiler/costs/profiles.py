"""Device profiles: devices, links and deployments read from a versioned TOML file."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

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
    "Profile",
    "ProfileError",
    "load_profile",
    "shipped_profile_path",
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


@dataclass(frozen=True, slots=True)
class Profile:
    """Every known device kind, link kind and deployment, and the files they came from."""

    schema: int
    devices: Mapping[str, DeviceSpec]
    links: Mapping[str, Link]
    deployments: Mapping[str, Deployment]
    tool_time_s: float
    sources: tuple[str, ...]

    def deployment(self, name_or_path: str | Path) -> Deployment:
        """A deployment by name (`--deploy server-2gpu`) or from a user file (`--deploy FILE[:NAME]`).

        A user file has the same schema as the shipped one; its devices, links and
        deployments are merged over this profile's. Without `:NAME` the file must define
        exactly one deployment.
        """
        return self.select(name_or_path)[1]

    def select(self, name_or_path: str | Path) -> tuple[Profile, Deployment]:
        """Like deployment(), with the profile it came from (merged with the user file, if any)."""
        path, name = _split_deploy_arg(name_or_path)
        if path is None:
            assert name is not None
            return self, self._named(name, self.sources[-1])
        merged = self.with_file(path)
        if name is not None:
            return merged, merged._named(name, str(path))
        from planc.compiler.costs.profile_toml import read_toml

        own = sorted(read_toml(path).get("deployments", {}) or {})
        if len(own) != 1:
            problem = "defines no deployment" if not own else f"defines {len(own)} deployments ({', '.join(own)})"
            raise ProfileError(str(path), "deployments", f"{problem}; name one as {path}:NAME")
        return merged, merged.deployments[own[0]]

    def with_file(self, path: str | Path) -> Profile:
        """This profile with a user file merged over it."""
        return load_profile(self.sources[0], extra=(*self.sources[1:], str(path)))

    def _named(self, name: str, file: str) -> Deployment:
        if name in self.deployments:
            return self.deployments[name]
        hint = did_you_mean(name, self.deployments)
        raise ProfileError(file, f"deployments.{name}", f"unknown deployment '{name}'"
                           f"{', ' + hint if hint else ''} (known deployments: {', '.join(sorted(self.deployments))})")


def shipped_profile_path() -> Path:
    """The devices.toml that ships with planc."""
    return Path(str(resources.files("planc.compiler.costs").joinpath("devices.toml")))


def load_profile(path: str | Path | None = None, *, extra: Sequence[str | Path] = ()) -> Profile:
    """Reads a profile file (default: the shipped one), then merges each `extra` file over it.

    Raises ProfileError naming the file, the key and the problem.
    """
    from planc.compiler.costs import profile_toml as T  # the reader builds this module's records

    files = [str(path if path is not None else shipped_profile_path()), *map(str, extra)]
    raw: dict[str, dict[str, Any]] = {"defaults": {}, "devices": {}, "links": {}, "deployments": {}}
    origin: dict[tuple[str, str], str] = {}
    for file in files:
        T.merge_raw(raw, origin, T.check_raw(file), file)
    devices = {n: T.device(n, t, origin[("devices", n)]) for n, t in raw["devices"].items()}
    links = {n: T.link(n, t, origin[("links", n)]) for n, t in raw["links"].items()}
    deployments = {
        n: T.deployment(n, t, origin[("deployments", n)], devices, links) for n, t in raw["deployments"].items()
    }
    tool_ms = T.number(raw["defaults"], "tool_time_ms", "defaults", origin.get(("defaults", ""), files[0]),
                      default=100.0, allow_zero=True)
    return Profile(SCHEMA, MappingProxyType(devices), MappingProxyType(links), MappingProxyType(deployments),
                   tool_ms / 1e3, tuple(files))


def _split_deploy_arg(arg: str | Path) -> tuple[Path | None, str | None]:
    if isinstance(arg, Path):
        return arg, None
    head, sep, tail = arg.rpartition(":")
    if sep and head.endswith(".toml"):
        return Path(head), tail
    if arg.endswith(".toml") or "/" in arg or Path(arg).is_file():
        return Path(arg), None
    return None, arg
