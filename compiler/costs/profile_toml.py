"""Reading and checking a profile TOML file: every key named, every number in range, every reference known."""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from planc.compiler.codegen.targets import Target
from planc.compiler.costs.devices import (
    DTYPE_FALLBACK,
    SCHEMA,
    Connection,
    Deployment,
    DeviceClass,
    DeviceInstance,
    DeviceSpec,
    Link,
    ProfileError,
)
from planc.dsl.diagnostics import did_you_mean
from planc.runtime.contract.dtypes import DTYPE_NAMES

__all__ = ["check_raw", "deployment", "device", "link", "merge_raw", "number", "read_toml"]

# Peaks every device lists: the dtypes without a fallback to another one.
_REQUIRED_DTYPES = tuple(d for d in DTYPE_NAMES if d not in DTYPE_FALLBACK)
_TOP_KEYS = ("schema", "defaults", "devices", "links", "deployments")
_DEFAULT_KEYS = ("tool_time_ms",)
_DEVICE_KEYS = (
    "description", "class", "target", "peak_gflops", "mem_bandwidth_gbs", "dispatch_us",
    "memory_gib", "power_idle_w", "power_busy_w",
)
_LINK_KEYS = ("description", "bandwidth_gbs", "latency_us")
_DEPLOYMENT_KEYS = ("description", "pue", "host", "devices", "links")
_CONNECTION_KEYS = ("a", "b", "link")


def read_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ProfileError(str(path), "-", "no such file") from None
    except OSError as e:
        raise ProfileError(str(path), "-", f"cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ProfileError(str(path), "-", f"not valid TOML: {e}") from None


def check_raw(file: str) -> dict[str, Any]:
    data = read_toml(file)
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


def merge_raw(raw: dict[str, dict[str, Any]], origin: dict[tuple[str, str], str],
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


def device(name: str, t: Mapping[str, Any], file: str) -> DeviceSpec:
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
    peak_flops = {dt: number(peaks, dt, f"{where}.peak_gflops", file) * 1e9 for dt in peaks}
    return DeviceSpec(
        name=name, target=target, device_class=klass, peak_flops=MappingProxyType(peak_flops),
        mem_bandwidth=number(t, "mem_bandwidth_gbs", where, file) * 1e9,
        dispatch_overhead=number(t, "dispatch_us", where, file, allow_zero=True) * 1e-6,
        memory_bytes=number(t, "memory_gib", where, file) * 2**30,
        power_idle_w=number(t, "power_idle_w", where, file, allow_zero=True),
        power_busy_w=number(t, "power_busy_w", where, file, allow_zero=True),
        description=_string(t, "description", where, file, default=""),
    )


def link(name: str, t: Mapping[str, Any], file: str) -> Link:
    where = f"links.{name}"
    _check_keys(t, _LINK_KEYS, where, file)
    return Link(name, number(t, "bandwidth_gbs", where, file) * 1e9,
                number(t, "latency_us", where, file, allow_zero=True) * 1e-6,
                _string(t, "description", where, file, default=""))


def deployment(name: str, t: Mapping[str, Any], file: str,
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
    pue = number(t, "pue", where, file)
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


def number(t: Mapping[str, Any], key: str, where: str, file: str, *,
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
