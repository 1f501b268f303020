"""Cycle detection over a plan's dependencies (iterative Tarjan, linear time)."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field

from planc.dsl import ast as A
from planc.dsl.diagnostics import Diagnostic

__all__ = ["DepGraph"]


@dataclass(slots=True)
class DepGraph:
    """Who waits for whom. Nodes are opaque keys, each with a display name and a span."""

    edges: dict[Hashable, list[Hashable]] = field(default_factory=dict)
    names: dict[Hashable, tuple[str, A.Span]] = field(default_factory=dict)

    def node(self, key: Hashable, name: str, span: A.Span) -> None:
        self.edges.setdefault(key, [])
        self.names.setdefault(key, (name, span))

    def edge(self, src: Hashable, dst: Hashable) -> None:
        self.edges.setdefault(src, []).append(dst)

    def cycles(self) -> list[Diagnostic]:
        """One E0401 per strongly connected component that is a cycle."""
        out = []
        for comp in self._sccs():
            members = set(comp)
            if len(comp) == 1 and comp[0] not in self.edges.get(comp[0], ()):
                continue
            start = min((k for k in comp if k in self.names), key=lambda k: _pos(self.names[k][1]),
                        default=None)
            if start is None:
                continue
            out.append(self._report(self._path(start, members)))
        return out

    def _report(self, path: list[Hashable]) -> Diagnostic:
        shown: list[str] = []
        for k in path:
            name = self.names[k][0] if k in self.names else "?"
            if not shown or shown[-1] != name:
                shown.append(name)
        if len(shown) > 1 and shown[0] == shown[-1] and len(shown) > 2:
            shown.pop()
        first, span = self.names[path[0]]
        chain = " -> ".join([*shown, shown[0]])
        notes = []
        seen = {first}
        for k in path[1:]:
            if k in self.names and self.names[k][0] not in seen:
                seen.add(self.names[k][0])
                notes.append((f"'{self.names[k][0]}' is part of the cycle", self.names[k][1]))
        return Diagnostic.error("E0401", f"'{first}' depends on itself: {chain}", span,
                                label="part of a dependency cycle", notes=tuple(notes[:8]),
                                help="a value cannot wait for itself; a loop's carry is how "
                                     "a value feeds the next iteration")

    def _path(self, start: Hashable, members: set[Hashable]) -> list[Hashable]:
        """Shortest path start -> ... -> start inside one component (BFS)."""
        prev: dict[Hashable, Hashable] = {}
        queue = deque([start])
        while queue:
            k = queue.popleft()
            for n in self.edges.get(k, ()):
                if n not in members:
                    continue
                if n == start:
                    path = [k]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return path[::-1]
                if n not in prev:
                    prev[n] = k
                    queue.append(n)
        return [start]

    def _sccs(self) -> list[list[Hashable]]:
        index: dict[Hashable, int] = {}
        low: dict[Hashable, int] = {}
        on_stack: set[Hashable] = set()
        stack: list[Hashable] = []
        comps: list[list[Hashable]] = []
        for root in list(self.edges):
            if root in index:
                continue
            work = [(root, 0)]
            while work:
                v, i = work.pop()
                if i == 0:
                    index[v] = low[v] = len(index)
                    stack.append(v)
                    on_stack.add(v)
                succ = self.edges.get(v, ())
                if i < len(succ):
                    work.append((v, i + 1))
                    w = succ[i]
                    if w not in index:
                        work.append((w, 0))
                    elif w in on_stack:
                        low[v] = min(low[v], index[w])
                    continue
                if work:  # propagate to the parent once v is done
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    comps.append(comp)
        return comps


def _pos(span: A.Span) -> tuple[int, int]:
    return (span.line, span.col)
