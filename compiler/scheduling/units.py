"""Scheduling units for the solver: single devices, or pools of interchangeable devices.

Devices that cost the same for every task, draw the same power, hold the same memory,
move data among themselves for free and reach every other device at the same price are
interchangeable: the solver treats them as one resource of capacity k (a cumulative)
instead of k exclusive devices, which removes the k! symmetric copies of every schedule.
A pooled schedule becomes a per-device one by interval colouring (``assign_pooled``).
"""

from __future__ import annotations

from collections.abc import Sequence

from planc.compiler.scheduling.problem import Problem

__all__ = ["assign_pooled", "units_of"]


def _same(prob: Problem, a: int, b: int) -> bool:
    p = prob.p
    if (prob.watts[a], prob.idle_watts[a], prob.capacity[a]) != (prob.watts[b], prob.idle_watts[b],
                                                                   prob.capacity[b]):
        return False
    if any(row[a] != row[b] for row in prob.cost):
        return False
    for row in prob.comm:
        if row[a * p + b] or row[b * p + a]:
            return False
        for c in range(p):
            if c not in (a, b) and (row[a * p + c] != row[b * p + c] or row[c * p + a] != row[c * p + b]):
                return False
    return True


def units_of(prob: Problem, *, pool: bool) -> list[list[int]]:
    """Devices grouped into units (each a list of device indices, in platform order)."""
    if not pool:
        return [[d] for d in range(prob.p)]
    units: list[list[int]] = []
    for d in range(prob.p):
        for u in units:
            if _same(prob, u[0], d):
                u.append(d)
                break
        else:
            units.append([d])
    return units


def assign_pooled(devices: Sequence[int], tasks: Sequence[int], start: Sequence[int],
                  finish: Sequence[int]) -> dict[int, int]:
    """Task -> device for tasks sharing a pool whose overlap never exceeds ``len(devices)``:
    by start time, each takes the device that became free most recently (ties: first)."""
    free_at = [0] * len(devices)
    out: dict[int, int] = {}
    for i in sorted(tasks, key=lambda i: (start[i], finish[i], i)):
        ok = [k for k in range(len(devices)) if free_at[k] <= start[i]]
        if not ok:  # overlap above the pool's size: cannot happen for a feasible solution
            raise ValueError("pooled tasks overlap more than the pool has devices")
        k = max(ok, key=lambda k: (free_at[k], -k))
        free_at[k] = finish[i]
        out[i] = devices[k]
    return out
