"""The one enum base of planc: text-valued members with a parse() that names what it expected."""

from __future__ import annotations

import enum
from typing import Self

__all__ = ["TextEnum"]


class TextEnum(enum.Enum):
    """Members whose values are the words a user writes, e.g.

        class Decision(TextEnum, noun="gate decision", error=GateError):
            APPROVE = "approve"

    `Decision.parse("maybe")` raises GateError("unknown gate decision 'maybe': expected one of:
    approve, reject"). `noun` defaults to the class name in lower case, `error` to ValueError.
    """

    def __init_subclass__(cls, *, noun: str | None = None, error: type[Exception] = ValueError, **kw: object):
        super().__init_subclass__(**kw)
        type.__setattr__(cls, "_text_noun", noun or cls.__name__.lower())
        type.__setattr__(cls, "_text_error", error)

    @classmethod
    def parse(cls, text: str) -> Self:
        for member in cls:
            if member.value == text:
                return member
        expected = ", ".join(str(m.value) for m in cls)
        raise cls._text_error(f"unknown {cls._text_noun} {text!r}: expected one of: {expected}")  # type: ignore[attr-defined]
