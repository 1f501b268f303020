"""A Gantt chart of an explained schedule, written as PNG and SVG that are byte-identical run to run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.style
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from planc.compiler.explain.report import Explanation, SlotInfo, SlotKind

__all__ = ["COLORS", "gantt_figure", "write_gantt"]

log = logging.getLogger(__name__)

COLORS: dict[SlotKind, str] = {
    SlotKind.GROUP: "#4c72b0", SlotKind.COMPUTE: "#64b5cd", SlotKind.BUILTIN: "#55a868",
    SlotKind.TOOL: "#dd8452", SlotKind.GATE: "#c44e52", SlotKind.LOOP: "#8172b3",
}
_WIDTH_IN, _LEFT, _RIGHT = 10.0, 0.13, 0.98
_FONT_PT, _CHAR_EM = 8.0, 0.6  # label font and a generous average glyph width (DejaVu Sans)
_MIN_FRAC = 0.004  # bars narrower than this share of the axis are drawn this wide
_LANE_IN = 0.32
# Fixed settings so the same schedule gives the same bytes whatever the user's matplotlibrc.
_RC: dict[str, Any] = {"svg.hashsalt": "planc-gantt", "svg.id": "planc-gantt", "svg.fonttype": "path",
       "font.family": "DejaVu Sans", "font.size": _FONT_PT, "path.simplify": True}


@dataclass(frozen=True, slots=True)
class _Bar:
    slot: SlotInfo
    start: float  # ms
    width: float  # ms, at least the visible minimum
    left: float  # ms; the extent of bar and label together, for lane packing
    right: float
    label_x: float
    label_ha: str

    @property
    def inside(self) -> bool:
        return self.label_ha == "center"


def _bars(slots: list[SlotInfo], xmax: float, ms_per_in: float) -> list[_Bar]:
    char_ms = _CHAR_EM * _FONT_PT / 72.0 * ms_per_in
    gap, min_w = 0.5 * char_ms, _MIN_FRAC * xmax
    out = []
    for s in slots:
        start, width = s.start * 1e3, max(s.seconds * 1e3, min_w)
        end, text_w = start + width, len(s.label) * char_ms
        if text_w + 2 * gap <= width:
            out.append(_Bar(s, start, width, start, end, start + width / 2, "center"))
        elif end + gap + text_w <= xmax:
            out.append(_Bar(s, start, width, start, end + gap + text_w, end + gap, "left"))
        else:
            out.append(_Bar(s, start, width, start - gap - text_w, end, start - gap, "right"))
    return out


def _lanes(bars: list[_Bar]) -> list[tuple[_Bar, int]]:
    """Greedy interval packing: each bar goes into the first lane whose last extent ended before it."""
    ends: list[float] = []
    placed = []
    for b in sorted(bars, key=lambda b: (b.left, b.right, b.slot.task)):
        lane = next((i for i, end in enumerate(ends) if end <= b.left), len(ends))
        if lane == len(ends):
            ends.append(b.right)
        else:
            ends[lane] = b.right
        placed.append((b, lane))
    return placed


def gantt_figure(e: Explanation) -> Figure:
    """One row per device instance, one bar per task colored by its kind, time in ms."""
    xmax = max(e.makespan * 1e3 * 1.02, 1e-3)
    ms_per_in = xmax / (_WIDTH_IN * (_RIGHT - _LEFT))
    shown = [s for s in e.slots if s.kind is not SlotKind.INPUT]
    rows = {d: _lanes(_bars([s for s in shown if s.device == d], xmax, ms_per_in)) for d, _ in e.devices}
    heights = {d: max([lane for _, lane in placed], default=0) + 1 for d, placed in rows.items()}
    total = sum(heights.values())
    fig = Figure(figsize=(_WIDTH_IN, 1.5 + _LANE_IN * total))
    ax = fig.add_subplot()
    y, ticks = 0.0, []
    for (d, kind), placed in zip(e.devices, rows.values()):
        n = heights[d]
        ticks.append((y - (n - 1) / 2, f"{d}\n{kind}"))
        for b, lane in placed:
            _draw(ax, b, y - lane)
        y -= n + 0.6
        if y < 0 and (d, kind) != e.devices[-1]:
            ax.axhline(y + 0.3, color="#dddddd", linewidth=0.6)
    ax.set_yticks([t for t, _ in ticks], [label for _, label in ticks])
    ax.set_ylim(y + 0.3, 0.7)
    ax.set_xlim(0, xmax)
    ax.set_xlabel("predicted time (ms)")
    ax.grid(axis="x", color="#eeeeee", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(f"plan {e.plan} on {e.deployment}: objective {e.objective}, method {e.method} | makespan "
                 f"{e.makespan * 1e3:.3f} ms (HEFT {e.heft_makespan * 1e3:.3f} ms), energy {e.energy:.4g} J",
                 fontsize=9)
    kinds = [k for k in COLORS if any(s.kind is k for s in shown)]
    if kinds:
        fig.legend(handles=[Patch(color=COLORS[k], label=k.value) for k in kinds], loc="lower right",
                   bbox_to_anchor=(_RIGHT, 0.0), ncol=len(kinds), frameon=False, fontsize=_FONT_PT)
    if any(s.seconds * 1e3 < _MIN_FRAC * xmax for s in shown):
        fig.text(0.01, 0.015, f"bars shorter than {_MIN_FRAC * xmax:.3g} ms are drawn that wide",
                 fontsize=6.5, color="#777777")
    fig.subplots_adjust(left=_LEFT, right=_RIGHT, top=1 - 0.4 / fig.get_figheight(),
                        bottom=0.75 / fig.get_figheight())
    return fig


def _draw(ax, b: _Bar, y: float) -> None:
    bar = ax.barh(y, b.width, left=b.start, height=0.7, color=COLORS.get(b.slot.kind, "#999999"),
                  edgecolor="white", linewidth=0.4)
    bar[0].set_gid(f"task-{b.slot.task}")  # the SVG names each bar after its task, for tools
    ax.text(b.label_x, y, b.slot.label, ha=b.label_ha, va="center", fontsize=_FONT_PT,
            color="white" if b.inside else "#222222", clip_on=False)


def write_gantt(e: Explanation, *, png: str | Path | None = None, svg: str | Path | None = None,
                dpi: int = 100) -> tuple[Path, ...]:
    """Writes the chart to `png` and/or `svg`; the same explanation gives the same bytes."""
    paths = tuple(Path(p) for p in (png, svg) if p is not None)
    if not paths:
        return ()
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
    # Matplotlib's defaults, not the user's matplotlibrc, then ours; restored on exit.
    with mpl.style.context(["default", _RC]):
        fig = gantt_figure(e)
        if png is not None:
            fig.savefig(png, format="png", dpi=dpi, metadata={"Software": None})
        if svg is not None:
            fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": "planc"})
    for p in paths:
        log.info("wrote %s", p)
    return paths
