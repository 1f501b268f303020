"""What `planc tune` changed and how well it predicts: parameter changes, error table, scatter plot."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from planc.compiler.tuning.fit import FitResult, KindModel, kendall_tau, mape

if TYPE_CHECKING:
    from planc.compiler.tuning.cases import Measurement

__all__ = ["Report", "Row", "format_changes", "format_report", "plot", "report"]


@dataclass(frozen=True, slots=True)
class Row:
    """One measured module variant: measured median and spread, predicted by the profile
    before tuning, by the fitted roofline after, and after with the module left out of the
    fit (`held_out`, None when not computed). Seconds."""

    module: str
    target: str
    driver: str
    source: str
    measured: float
    spread: float
    before: float
    after: float
    held_out: float | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """Rows and the summary statistics over them (MAPE as fractions, Kendall tau-b)."""

    rows: tuple[Row, ...]

    def _stat(self, which: str, fn) -> float:
        rows = [r for r in self.rows if getattr(r, which) is not None]
        return fn([getattr(r, which) for r in rows], [r.measured for r in rows]) if rows else math.nan

    def mape(self, which: str) -> float:
        """MAPE of the `before`, `after` or `held_out` predictions."""
        return self._stat(which, mape)

    def tau(self, which: str) -> float:
        """Kendall tau between the `before`, `after` or `held_out` predictions and the measurements."""
        return self._stat(which, kendall_tau)


def report(measurements: Iterable[Measurement], before: Mapping[str, KindModel], result: FitResult,
           held_out: Mapping[tuple[str, str], float] | None = None) -> Report:
    """Rows for every measurement whose kind is in `before` (what the compiler used); `after`
    uses the fitted model where the kind was fitted, else `before`'s."""
    rows = []
    for m in measurements:
        old = before.get(m.target)
        if old is None:
            continue
        new = result.model(m.target) or old
        rows.append(Row(m.module, m.target, m.driver, m.source, m.median, m.spread, old.predict(m.facts),
                        new.predict(m.facts), (held_out or {}).get((m.module, m.target))))
    return Report(tuple(rows))


def _si(value: float, unit: str) -> str:
    return f"{value:,.4g} {unit}"


def format_changes(result: FitResult) -> str:
    """Old and new parameters per fitted device kind, with units; and the kinds left alone."""
    lines = []
    for k in result.kinds:
        old, new = k.before.spec, k.after.spec
        rms = _pct(math.expm1(k.rms_log))
        lines.append(f"device kind {k.kind}: fitted to {k.modules} modules (rms error {rms})")
        for dt in sorted(new.peak_flops):
            lines.append(_change(f"peak {dt}", old.peak(dt) / 1e9, new.peak(dt) / 1e9, "GFLOP/s"))
        lines.append(_change("memory bandwidth", old.mem_bandwidth / 1e9, new.mem_bandwidth / 1e9, "GB/s"))
        full = k.after.full
        call = "call overhead" if full is not None else "dispatch overhead"
        lines.append(_change(call, old.dispatch_overhead * 1e6, new.dispatch_overhead * 1e6, "us"))
        if full is None:
            lines.append(f"  {'serial fraction':<18} {k.before.serial:>18.2f} -> {k.after.serial:<18.2f} "
                         f"(0: compute and memory overlap, 1: they add up)")
            continue
        lines.append(f"  {'per dispatch':<18} {'':>18}    {_si(full.per_dispatch * 1e6, 'us'):<18} "
                     "(each IREE dispatch of a module)")
        if full.cache_bandwidth > 0:
            lines.append(f"  {'cache bandwidth':<18} {'':>18}    {_si(full.cache_bandwidth / 1e9, 'GB/s'):<18} "
                         f"(working set within {full.llc_bytes / (1 << 20):.4g} MiB)")
        lines.append(f"  {'vector rate':<18} {'':>18}    {full.vector_rate:<18.3f} "
                     "(share of the peak outside matmuls and convolutions)")
        lines.append(f"  {'combination':<18} {'max':>18} -> {k.combination:<18} (of compute and memory time)")
        saved = result.tuning.devices.get(k.kind)
        if saved is not None and saved.local_task_flops > 0:
            lines.append(f"  {'local-task from':<18} {'':>18}    {_si(saved.local_task_flops / 1e6, 'MFLOP'):<18} "
                         "(local-sync below: measured crossover)")
    for kind, why in result.skipped:
        lines.append(f"device kind {kind}: not fitted ({why}); measured modules are still recorded")
    return "\n".join(lines)


def _change(what: str, old: float, new: float, unit: str) -> str:
    ratio = f"x{new / old:.3g}" if old > 0 else "was 0"
    return f"  {what:<18} {_si(old, unit):>18} -> {_si(new, unit):<18} ({ratio})"


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f} %"


def _us(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e6:,.1f}"


def format_report(rep: Report) -> str:
    """The per-module table (microseconds) and the summary lines."""
    held = any(r.held_out is not None for r in rep.rows)
    head = (f"{'module':<18} {'target':<14} {'driver':<10} {'measured us':>12} {'spread':>7} "
            f"{'before us':>11} {'after us':>10}" + (f" {'held-out us':>11}" if held else "")
            + f" {'err':>7}")
    lines = [head]
    for r in sorted(rep.rows, key=lambda r: (r.target, r.measured)):
        spread = f"{100 * r.spread / r.measured:.0f}%" if r.measured > 0 else "-"
        err = (r.held_out if r.held_out is not None else r.after) / r.measured - 1
        name = r.module + {"trace": "*", "probe": "+"}.get(r.source, "")
        lines.append(f"{name:<18} {r.target:<14} {r.driver:<10} {_us(r.measured):>12} {spread:>7} "
                     f"{_us(r.before):>11} {_us(r.after):>10}" + (f" {_us(r.held_out):>11}" if held else "")
                     + f" {100 * err:>+6.1f}%")
    lines.append(f"MAPE    before {_pct(rep.mape('before'))}, after {_pct(rep.mape('after'))}"
                 + (f", held-out {_pct(rep.mape('held_out'))}" if held else ""))
    lines.append(f"Kendall before {rep.tau('before'):.3f}, after {rep.tau('after'):.3f}"
                 + (f", held-out {rep.tau('held_out'):.3f}" if held else ""))
    if any(r.source == "probe" for r in rep.rows):
        lines.append("+ a probe module of planc tune (fitted, not recorded as a module time)")
    if any(r.source == "trace" for r in rep.rows):
        lines.append("* from planrt traces (argument copies included)")
    return "\n".join(lines)


def plot(rep: Report, path: str | Path, *, title: str = "planc tune: predicted vs measured") -> Path:
    """A log-log scatter of predicted against measured seconds, before and after tuning (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    measured = [r.measured * 1e6 for r in rep.rows]
    series = [("before", "profile (before)", "tab:red", "x"), ("after", "fitted (after)", "tab:blue", "o")]
    if any(r.held_out is not None for r in rep.rows):
        series.append(("held_out", "fitted, module held out", "tab:green", "^"))
    for which, label, color, marker in series:
        pts = [(m, getattr(r, which) * 1e6) for m, r in zip(measured, rep.rows)
               if getattr(r, which) is not None]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=f"{label}: MAPE {_pct(rep.mape(which))}",
                   c=color, marker=marker, alpha=0.8)
    values = [v for r in rep.rows for v in (r.measured, r.before, r.after) if v > 0]
    lo, hi = (min(values) * 1e6 / 2, max(values) * 1e6 * 2) if values else (1.0, 10.0)
    ax.plot([lo, hi], [lo, hi], "k--", linewidth=1, label="predicted = measured")
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi), xlabel="measured (us)",
           ylabel="predicted (us)", title=title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, format="png")
    plt.close(fig)
    return out
