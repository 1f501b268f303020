"""A sibling module imported by pytools.py."""


def scale(v, factor):
    return v * factor
