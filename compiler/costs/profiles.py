"""Device profiles: devices, links and deployments read from a versioned TOML file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from planc.compiler.costs import profile_toml as T
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
        own = sorted(T.read_toml(path).get("deployments", {}) or {})
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
