"""Every call of a python tool checked against its function's parameters when the bundle loads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from planc.runtime.bundle.format import ToolCallMismatch
from planc.runtime.tools.signature import ToolSignature

__all__ = ["check_tool_calls"]


def check_tool_calls(manifest: Mapping[str, Any], members: Mapping[str, bytes]) -> None:
    """Raise ToolCallMismatch for the first call whose arguments cannot bind to its function.

    The function is read from its source, never run; a function the source alone cannot tell
    (decorated, or bound again after its `def`) is checked by the tool worker on its first call.
    """
    tools = manifest.get("tools") or {}
    signatures: dict[str, ToolSignature | None] = {}
    for task in _tool_tasks(manifest.get("tasks") or []):
        name = task.get("tool")
        tool = tools.get(name) if isinstance(name, str) else None
        if not isinstance(tool, Mapping) or tool.get("kind") != "python" or tool.get("path") not in members:
            continue
        if name not in signatures:
            signatures[name] = ToolSignature.from_source(members[tool["path"]], str(tool.get("function")))
        sig = signatures[name]
        args = task.get("args") if isinstance(task.get("args"), list) else []
        problem = sig.mismatch([None] * len(args)) if sig is not None else None
        if problem is not None:
            file = str(tool["path"]).rsplit("/", 1)[-1]
            shown = ", ".join(_arg_text(a) for a in args) or "no arguments"
            raise ToolCallMismatch(
                f"task '{task.get('name')}' calls tool '{name}' as {name}({shown}), {len(args)} argument(s), "
                f"but {file} declares {sig}: {problem}", member=tool["path"])


def _tool_tasks(tasks: list[Any]) -> Iterator[Mapping[str, Any]]:
    for t in tasks:
        if not isinstance(t, Mapping):
            continue
        if t.get("kind") == "tool":
            yield t
        elif t.get("kind") == "loop" and isinstance(t.get("body"), list):
            yield from _tool_tasks(t["body"])


def _arg_text(a: Any) -> str:
    if isinstance(a, Mapping) and "const" in a:
        return repr(a["const"]) if not isinstance(a["const"], str) else f'"{a["const"]}"'
    return str(a)
