"""The devices a task graph is scheduled on: capacities, power draw and the links between them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["Device", "Link", "Platform", "PlatformError"]


class PlatformError(ValueError):
    """A platform description is malformed (unknown device, negative bandwidth, ...)."""


@dataclass(frozen=True, slots=True)
class Device:
    """One processor of the platform.

    Attributes:
        name: unique device name; task ``cost`` mappings are keyed by it.
        memory: capacity in bytes (``math.inf``: unbounded).
        watts: power drawn while the device runs a task.
        idle_watts: power drawn while it idles within the makespan (default 0: only busy
            time costs energy).
    """

    name: str
    memory: float = math.inf
    watts: float = 0.0
    idle_watts: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise PlatformError(f"device name must be a non-empty string, got {self.name!r}")
        for attr in ("memory", "watts", "idle_watts"):
            value = getattr(self, attr)
            if not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
                raise PlatformError(f"device '{self.name}': {attr} must be a number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class Link:
    """A directed link: sending ``b`` bytes takes ``latency + b / bandwidth`` seconds."""

    latency: float = 0.0
    bandwidth: float = math.inf

    def __post_init__(self) -> None:
        if not isinstance(self.latency, (int, float)) or not 0 <= self.latency < math.inf:
            raise PlatformError(f"link latency must be a finite number >= 0 seconds, got {self.latency!r}")
        if not isinstance(self.bandwidth, (int, float)) or not self.bandwidth > 0:
            raise PlatformError(f"link bandwidth must be > 0 bytes/s, got {self.bandwidth!r}")

    def time(self, nbytes: float) -> float:
        """Seconds to move ``nbytes`` over this link."""
        return self.latency + (0.0 if nbytes == 0 else nbytes / self.bandwidth)


@dataclass(frozen=True, slots=True)
class Platform:
    """Heterogeneous devices and the links between them.

    Attributes:
        devices: the devices, in a fixed order (schedules list them in this order).
        links: ``(src, dst) -> Link`` for ordered device pairs; a pair not listed uses
            ``default_link``. Moving data within one device is always free.
        default_link: the link used between devices without an entry in ``links``.
        pue: power usage effectiveness of the site; energy is multiplied by it (>= 1).
    """

    devices: tuple[Device, ...]
    links: Mapping[tuple[str, str], Link] = field(default_factory=dict)
    default_link: Link = Link()
    pue: float = 1.0

    def __post_init__(self) -> None:
        devices = tuple(self.devices)
        if not devices:
            raise PlatformError("a platform needs at least one device")
        names = [d.name for d in devices]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise PlatformError(f"duplicate device name(s): {', '.join(dup)}")
        for (src, dst), link in dict(self.links).items():
            for end in (src, dst):
                if end not in names:
                    raise PlatformError(f"link ({src!r}, {dst!r}) names unknown device {end!r}; "
                                        f"expected one of: {', '.join(names)}")
            if not isinstance(link, Link):
                raise PlatformError(f"link ({src!r}, {dst!r}) must be a Link, got {type(link).__name__}")
        if not isinstance(self.pue, (int, float)) or not 1.0 <= self.pue < math.inf:
            raise PlatformError(f"pue must be a finite number >= 1, got {self.pue!r}")
        object.__setattr__(self, "devices", devices)
        object.__setattr__(self, "links", MappingProxyType(dict(self.links)))

    def __hash__(self) -> int:
        return hash((self.devices, tuple(sorted(self.links.items())), self.default_link, self.pue))

    @classmethod
    def uniform(
        cls,
        names: Iterable[str],
        *,
        latency: float = 0.0,
        bandwidth: float = math.inf,
        memory: float = math.inf,
        watts: float = 0.0,
        pue: float = 1.0,
    ) -> Platform:
        """Devices with equal capacity and power, fully connected by identical links."""
        devices = tuple(Device(n, memory=memory, watts=watts) for n in names)
        return cls(devices, default_link=Link(latency, bandwidth), pue=pue)

    @property
    def names(self) -> tuple[str, ...]:
        """Device names in platform order."""
        return tuple(d.name for d in self.devices)

    def device(self, name: str) -> Device:
        """The device called ``name``."""
        for d in self.devices:
            if d.name == name:
                return d
        raise PlatformError(f"unknown device {name!r}; expected one of: {', '.join(self.names)}")

    def link(self, src: str, dst: str) -> Link:
        """The link used to move data from ``src`` to ``dst`` (``src != dst``)."""
        return self.links.get((src, dst), self.default_link)

    def comm_time(self, nbytes: float, src: str, dst: str) -> float:
        """Seconds to move ``nbytes`` from ``src`` to ``dst``; zero on the same device."""
        return 0.0 if src == dst else self.link(src, dst).time(nbytes)
