"""The errors of a failed tool call: ToolError, and its kinds ToolTimeout and BreakerOpen."""

from __future__ import annotations

__all__ = ["BreakerOpen", "ToolError", "ToolTimeout"]


class ToolError(Exception):
    """A tool call failed: names the tool, the attempt and the tail of its stderr. A `permanent`
    failure (the call cannot work as written, e.g. its arguments do not fit the function) is not retried."""

    def __init__(self, tool: str, message: str, *, attempt: int | None = None, stderr_tail: str = "",
                 permanent: bool = False) -> None:
        self.tool, self.message, self.attempt, self.stderr_tail = tool, message, attempt, stderr_tail
        self.permanent = permanent
        super().__init__(tool, message)

    def __str__(self) -> str:
        at = f" (attempt {self.attempt})" if self.attempt is not None else ""
        text = f"tool '{self.tool}'{at}: {self.message}"
        tail = "\n".join(self.stderr_tail.strip().splitlines()[-5:])
        return f"{text}\n  stderr: " + tail.replace("\n", "\n          ") if tail else text


class ToolTimeout(ToolError):
    """A tool call ran past its timeout (and, for a process, was killed)."""

    def __init__(
        self,
        tool: str,
        timeout: float,
        *,
        attempt: int | None = None,
        stderr_tail: str = "",
        detail: str = "",
    ) -> None:
        self.timeout = timeout
        msg = f"timed out after {timeout:g}s" + (f"; {detail}" if detail else "")
        super().__init__(tool, msg, attempt=attempt, stderr_tail=stderr_tail)


class BreakerOpen(ToolError):
    """The tool's circuit breaker is open: the call failed fast without running."""

    def __init__(self, tool: str, failures: int, window: float, retry_after: float) -> None:
        self.failures, self.window, self.retry_after = failures, window, retry_after
        super().__init__(
            tool,
            f"circuit breaker open after {failures} failures within {window:g}s; "
            f"failing fast, next probe allowed in {retry_after:.3g}s",
        )
