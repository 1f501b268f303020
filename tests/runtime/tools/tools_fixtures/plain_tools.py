"""Python tools written as a user would: plain functions, some asking for the idempotency key."""

import functools
import os


def plain(revised):
    return {"got": revised}


def keyed(x, *, idempotency_key):
    return {"x": x, "key": idempotency_key}


def anykw(x, **options):
    return {"x": x, "options": options}


def own_type_error(x):
    """Fails with its own TypeError, after noting the attempt in attempts.log (in its cwd)."""
    with open("attempts.log", "a") as f:
        f.write(f"{os.getpid()}\n")
    return len(x) + "1"  # TypeError: unsupported operand type(s) for +: 'int' and 'str'


def _logged(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


@_logged
def decorated(a):
    """Decorated: the source alone cannot tell its signature; the worker reads the live one."""
    return a
