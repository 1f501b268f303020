"""Device profiles: devices, links and deployments read from a versioned TOML file."""

from __future__ import annotations

import enum
import math
import tomllib
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from planc.compiler.targets import Target
from planc.dsl.diagnostics import did_you_mean

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
_REQUIRED_DTYPES = ("f32", "f16", "bf16", "i8")

_TOP_KEYS = ("schema", "defaults", "devices", "links", "deployments")
_DEFAULT_KEYS = ("tool_time_ms",)
_DEVICE_KEYS = (
    "description", "class", "target", "peak_gflops", "mem_bandwidth_gbs", "dispatch_us",
    "memory_gib", "power_idle_w", "power_busy_w",
)
_LINK_KEYS = ("description", "bandwidth_gbs", "latency_us")
_DEPLOYMENT_KEYS = ("description", "pue", "host", "devices", "links")
_CONNECTION_KEYS = ("a", "b", "link")


class ProfileError(ValueError):
    """A profile file is missing, malformed or inconsistent: names the file, the key and the problem."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        super().__init__(f"{file}: {key}: {problem}")
        self.file = file
        self.key = key
        self.problem = problem


class DeviceClass(enum.Enum):
    CPU = "cpu"
    GPU = "gpu"

    @classmethod
    def parse(cls, text: str) -> DeviceClass:
        for member in cls:
            if member.value == text:
                return member
        raise ValueError(f"unknown device class '{text}', expected one of: {', '.join(m.value for m in cls)}")


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
        own = sorted(_read_toml(path).get("deployments", {}) or {})
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
    return Path(str(resources.files("planc.compiler").joinpath("devices.toml")))


def load_profile(path: str | Path | None = None, *, extra: Sequence[str | Path] = ()) -> Profile:
    """Reads a profile file (default: the shipped one), then merges each `extra` file over it.

    Raises ProfileError naming the file, the key and the problem.
    """
    files = [str(path if path is not None else shipped_profile_path()), *map(str, extra)]
    raw: dict[str, dict[str, Any]] = {"defaults": {}, "devices": {}, "links": {}, "deployments": {}}
    origin: dict[tuple[str, str], str] = {}
    for file in files:
        _merge_raw(raw, origin, _read_checked(file), file)
    devices = {n: _device(n, t, origin[("devices", n)]) for n, t in raw["devices"].items()}
    links = {n: _link(n, t, origin[("links", n)]) for n, t in raw["links"].items()}
    deployments = {
        n: _deployment(n, t, origin[("deployments", n)], devices, links) for n, t in raw["deployments"].items()
    }
    tool_ms = _number(raw["defaults"], "tool_time_ms", "defaults", origin.get(("defaults", ""), files[0]),
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


def _read_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ProfileError(str(path), "-", "no such file") from None
    except OSError as e:
        raise ProfileError(str(path), "-", f"cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(str(path), "-", f"not valid TOML: {e}") from None


def _read_checked(file: str) -> dict[str, Any]:
    data = _read_toml(file)
    _check_keys(data, _TOP_KEYS, "", file)
    if "schema" not in data:
        raise ProfileError(file, "schema", f"missing; the file must start with `schema = {SCHEMA}`")
    if data["schema"] != SCHEMA or isinstance(data["schema"], bool):
        raise ProfileError(file, "schema", f"unsupported schema {data['schema']!r}: this planc reads schema {SCHEMA}")
    for section in ("defaults", "devices", "links", "deployments"):
        _table(data.get(section, {}), section, file)
        if section != "defaults":
            for name, entry in data.get(section, {}).items():
                _table(entry, f"{section}.{name}", file)
    return data


def _merge_raw(raw: dict[str, dict[str, Any]], origin: dict[tuple[str, str], str],
               data: dict[str, Any], file: str) -> None:
    if data.get("defaults"):
        raw["defaults"].update(data["defaults"])
        origin[("defaults", "")] = file
    for section in ("devices", "links"):
        for name, entry in data.get(section, {}).items():
            merged = {**raw[section].get(name, {}), **entry}
            if "peak_gflops" in entry and isinstance(raw[section].get(name, {}).get("peak_gflops"), dict):
                merged["peak_gflops"] = {**raw[section][name]["peak_gflops"], **_table(
                    entry["peak_gflops"], f"{section}.{name}.peak_gflops", file)}
            raw[section][name] = merged
            origin[(section, name)] = file
    for name, entry in data.get("deployments", {}).items():
        raw["deployments"][name] = dict(entry)  # a deployment is replaced whole
        origin[("deployments", name)] = file


def _device(name: str, t: Mapping[str, Any], file: str) -> DeviceSpec:
    where = f"devices.{name}"
    _check_keys(t, _DEVICE_KEYS, where, file)
    target_name = _string(t, "target", where, file, default=name)
    try:
        target = Target.parse(target_name)
        klass = DeviceClass.parse(_string(t, "class", where, file))
    except ValueError as e:
        key = "target" if "target" in str(e) else "class"
        raise ProfileError(file, f"{where}.{key}", str(e)) from None
    peaks = _table(t.get("peak_gflops"), f"{where}.peak_gflops", file, required=True)
    _check_keys(peaks, (*_REQUIRED_DTYPES, *DTYPE_FALLBACK), f"{where}.peak_gflops", file)
    for dtype in _REQUIRED_DTYPES:
        if dtype not in peaks:
            raise ProfileError(file, f"{where}.peak_gflops.{dtype}", "missing (FLOP/s in units of 1e9)")
    peak_flops = {dt: _number(peaks, dt, f"{where}.peak_gflops", file) * 1e9 for dt in peaks}
    return DeviceSpec(
        name=name, target=target, device_class=klass, peak_flops=MappingProxyType(peak_flops),
        mem_bandwidth=_number(t, "mem_bandwidth_gbs", where, file) * 1e9,
        dispatch_overhead=_number(t, "dispatch_us", where, file, allow_zero=True) * 1e-6,
        memory_bytes=_number(t, "memory_gib", where, file) * 2**30,
        power_idle_w=_number(t, "power_idle_w", where, file, allow_zero=True),
        power_busy_w=_number(t, "power_busy_w", where, file, allow_zero=True),
        description=_string(t, "description", where, file, default=""),
    )


def _link(name: str, t: Mapping[str, Any], file: str) -> Link:
    where = f"links.{name}"
    _check_keys(t, _LINK_KEYS, where, file)
    return Link(name, _number(t, "bandwidth_gbs", where, file) * 1e9,
                _number(t, "latency_us", where, file, allow_zero=True) * 1e-6,
                _string(t, "description", where, file, default=""))


def _deployment(name: str, t: Mapping[str, Any], file: str,
                devices: Mapping[str, DeviceSpec], links: Mapping[str, Link]) -> Deployment:
    where = f"deployments.{name}"
    _check_keys(t, _DEPLOYMENT_KEYS, where, file)
    table = _table(t.get("devices"), f"{where}.devices", file, required=True)
    if not table:
        raise ProfileError(file, f"{where}.devices", "names no device; expected e.g. { cpu0 = \"x86_64-avx2\" }")
    instances = tuple(DeviceInstance(inst, _known(kind, devices, f"{where}.devices.{inst}", file, "device"))
                      for inst, kind in table.items())
    host = _string(t, "host", where, file)
    _known(host, dict.fromkeys(table), f"{where}.host", file, "device instance")
    entries = t.get("links", [])
    if not isinstance(entries, list):
        raise ProfileError(file, f"{where}.links", "expected a list of { a = ..., b = ..., link = ... }")
    conns = tuple(_connection(e, f"{where}.links[{i}]", file, table, links) for i, e in enumerate(entries))
    pue = _number(t, "pue", where, file)
    if pue < 1.0:
        raise ProfileError(file, f"{where}.pue", f"PUE is facility energy over IT energy, at least 1.0; found {pue}")
    dep = Deployment(name, instances, host, conns, pue, _string(t, "description", where, file, default=""), file)
    for inst in dep.names:
        dep.route(host, inst)  # every device must be reachable from the host
    return dep


def _connection(e: Any, where: str, file: str, table: Mapping[str, Any], links: Mapping[str, Link]) -> Connection:
    e = _table(e, where, file, required=True)
    _check_keys(e, _CONNECTION_KEYS, where, file)
    a, b = _string(e, "a", where, file), _string(e, "b", where, file)
    for key, inst in (("a", a), ("b", b)):
        _known(inst, table, f"{where}.{key}", file, "device instance")
    if a == b:
        raise ProfileError(file, where, f"links '{a}' to itself")
    return Connection(a, b, _known(_string(e, "link", where, file), links, f"{where}.link", file, "link"))


def _known(name: Any, table: Mapping[str, Any], key: str, file: str, what: str) -> Any:
    if not isinstance(name, str):
        raise ProfileError(file, key, f"expected the name of a {what}, found {name!r}")
    if name in table:
        return table[name]
    hint = did_you_mean(name, table)
    raise ProfileError(file, key, f"unknown {what} '{name}'{', ' + hint if hint else ''}"
                       f" (known: {', '.join(sorted(table))})")


def _check_keys(t: Mapping[str, Any], allowed: Iterable[str], where: str, file: str) -> None:
    allowed = tuple(allowed)
    for key in t:
        if key not in allowed:
            hint = did_you_mean(key, allowed)
            raise ProfileError(file, f"{where}.{key}" if where else key,
                               f"unknown key{', ' + hint if hint else ''} (expected one of: {', '.join(allowed)})")


def _table(v: Any, where: str, file: str, *, required: bool = False) -> dict[str, Any]:
    if v is None and required:
        raise ProfileError(file, where, "missing")
    if not isinstance(v, dict):
        raise ProfileError(file, where, f"expected a table, found {type(v).__name__} {v!r}")
    return v


def _number(t: Mapping[str, Any], key: str, where: str, file: str, *,
            default: float | None = None, allow_zero: bool = False) -> float:
    if key not in t:
        if default is not None:
            return default
        raise ProfileError(file, f"{where}.{key}", "missing")
    v = t[key]
    ok = isinstance(v, int | float) and not isinstance(v, bool) and (v > 0 or (allow_zero and v == 0))
    if not ok or not math.isfinite(v):
        kind = "non-negative" if allow_zero else "positive"
        raise ProfileError(file, f"{where}.{key}", f"expected a {kind} number, found {v!r}")
    return float(v)


def _string(t: Mapping[str, Any], key: str, where: str, file: str, *, default: str | None = None) -> str:
    if key not in t:
        if default is not None:
            return default
        raise ProfileError(file, f"{where}.{key}", "missing")
    if not isinstance(t[key], str):
        raise ProfileError(file, f"{where}.{key}", f"expected a string, found {t[key]!r}")
    return str(t[key])
