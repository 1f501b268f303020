"""Where the formatter puts each comment: before the statement it precedes, or at its end."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from planc.dsl import ast as A

__all__ = ["BLANK", "CommentMap", "Slots"]


class _Blank:
    def __repr__(self) -> str:
        return "BLANK"


BLANK = _Blank()  # a blank line worth keeping between statements or comments


@dataclass(slots=True)
class Slots:
    """The comments of one block (a module, a plan body or a loop body), by where they go.

    head: trailing comments of the opening line (after '{'); lead[i]: comments and blank lines
    before item i; trail[i]: comments at the end of item i's last line; end: comments before
    the closing '}'; tail: comments after the closing '}'; nested[i]: the comments inside item
    i when it is itself a block (a plan or a loop), to be placed by its own `block` call.
    """

    head: list[str] = field(default_factory=list)
    nested: list[list[tuple[int, str]]] = field(default_factory=list)
    lead: list[list] = field(default_factory=list)
    trail: list[list[str]] = field(default_factory=list)
    end: list = field(default_factory=list)
    tail: list[str] = field(default_factory=list)


class CommentMap:
    """Places comments block by block; each comment lands in exactly one slot."""

    def __init__(self, module: A.Module):
        self.trailing = module.trailing_comment_lines

    def block(self, items: Sequence[object], comments: Sequence[tuple[int, str]], lo: int,
              container: object) -> Slots:
        """Place `comments` (sorted by line) among `items`, statements or plans with spans.

        `lo` is the line of the block's opening (its container's first line), 1 for a module.
        """
        n = len(items)
        slots = Slots(nested=[[] for _ in items], lead=[[] for _ in items], trail=[[] for _ in items])
        spans: list[A.Span] = [it.span for it in items]  # type: ignore[attr-defined]
        starts = [s.line for s in spans]
        inside: list[list[str]] = [[] for _ in items]
        last = [(spans[j - 1].end_line if j else (lo if container is not None else 0)) for j in range(n)]
        end_last = spans[-1].end_line if n else lo
        for line, text in comments:
            i = bisect.bisect_right(starts, line) - 1
            trailing = line in self.trailing
            if i >= 0 and line <= spans[i].end_line:
                if isinstance(items[i], (A.Plan, A.Loop)):
                    slots.nested[i].append((line, text))
                    continue
                (slots.trail[i] if trailing else inside[i]).append(text)
            elif i + 1 < n:
                if trailing and i < 0 and container is not None:
                    slots.head.append(text)
                    continue
                j = i + 1
                if line - last[j] > 1 and (slots.lead[j] or j > 0 or container is None):
                    slots.lead[j].append(BLANK)
                slots.lead[j].append(text)
                last[j] = line
            elif trailing and container is not None:
                (slots.head if n == 0 and line == lo else slots.tail).append(text)
            else:
                if line - end_last > 1 and (n or container is None):
                    slots.end.append(BLANK)
                slots.end.append(text)
                end_last = line
        for j in range(n):
            if starts[j] - last[j] > 1 and last[j] > 0:
                slots.lead[j].append(BLANK)
            slots.lead[j] += inside[j]
        return slots
