"""HEFT: Heterogeneous Earliest Finish Time (Topcuoglu, Hariri and Wu, IEEE TPDS 13(3), 2002)."""

from __future__ import annotations

from planc.compiler.scheduling.listsched import Timing, eft_decode
from planc.compiler.scheduling.problem import Problem
from planc.compiler.scheduling.ranks import order_by, upward_rank

__all__ = ["heft"]


def heft(prob: Problem, *, insertion: bool = True) -> Timing:
    """Tasks by decreasing upward rank (mean costs), each on the device of earliest finish time,
    using the insertion-based policy (a task may fill an idle gap between scheduled tasks)."""
    return eft_decode(prob, order_by(prob, upward_rank(prob)), insertion=insertion)
