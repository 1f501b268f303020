"""PEFT: Predict Earliest Finish Time (Arabnejad and Barbosa, IEEE TPDS 25(3), 2014)."""

from __future__ import annotations

from planc.compiler.scheduling.listsched import Timing, eft_decode
from planc.compiler.scheduling.problem import Problem
from planc.compiler.scheduling.ranks import optimistic_cost_table, order_by

__all__ = ["peft", "rank_oct"]


def rank_oct(table: list[list[float]]) -> list[float]:
    """PEFT's task priority: the mean of a task's row of the optimistic cost table."""
    return [sum(row) / len(row) for row in table]


def peft(prob: Problem) -> Timing:
    """Ready tasks by decreasing rank_oct, each on the device minimizing ``EFT + OCT``
    (the optimistic cost table looks ahead to the cheapest completion of the successors)."""
    table = optimistic_cost_table(prob)
    return eft_decode(prob, order_by(prob, rank_oct(table)), oct_table=table)
