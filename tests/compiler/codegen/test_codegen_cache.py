"""The content-addressed module cache (no IREE needed)."""

import multiprocessing
import os
from pathlib import Path

import pytest
from planc.compiler.cache import Cache, cache_key, default_cache_dir

TEXT = "module @g0 {}"
FLAGS = ["--iree-hal-target-device=local", "--iree-opt-level=O2"]


def test_key_is_stable_and_sensitive_to_every_part():
    key = cache_key(TEXT, FLAGS, "3.13.0")
    assert key == cache_key(TEXT, list(FLAGS), "3.13.0")
    assert len(key) == 64 and int(key, 16) >= 0
    others = {
        cache_key(TEXT + " ", FLAGS, "3.13.0"),
        cache_key(TEXT, FLAGS[:1], "3.13.0"),
        cache_key(TEXT, FLAGS[::-1], "3.13.0"),
        cache_key(TEXT, FLAGS, "3.13.1"),
        # The same characters split differently between the parts must not collide.
        cache_key(TEXT, ["--iree-hal-target-device=local--iree-opt-level=O2"], "3.13.0"),
        cache_key(FLAGS[-1] + TEXT, FLAGS[:1], "3.13.0"),
    }
    assert key not in others and len(others) == 6


def test_default_dir_precedence(tmp_path):
    home = Path.home()
    assert default_cache_dir({}) == home / ".cache" / "planc"
    assert default_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "planc"
    env = {"XDG_CACHE_HOME": str(tmp_path), "PLANC_CACHE_DIR": str(tmp_path / "mine")}
    assert default_cache_dir(env) == tmp_path / "mine"
    assert default_cache_dir({"PLANC_CACHE_DIR": ""}) == home / ".cache" / "planc"


def test_put_get_round_trip(tmp_path):
    cache = Cache(tmp_path / "c")
    key = cache_key(TEXT, FLAGS, "v")
    assert cache.get(key) is None
    path = cache.put(key, b"\x00module-bytes")
    assert path == tmp_path / "c" / key[:2] / f"{key}.vmfb"
    assert cache.get(key) == b"\x00module-bytes"
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind
    assert cache.clear() == 1 and cache.get(key) is None


def test_empty_entry_counts_as_a_miss(tmp_path):
    cache = Cache(tmp_path)
    key = cache_key(TEXT, FLAGS, "v")
    cache.path(key).parent.mkdir(parents=True)
    cache.path(key).write_bytes(b"")
    assert cache.get(key) is None


def test_bad_key_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="invalid cache key"):
        Cache(tmp_path).get("../../etc/passwd")


def _hammer(root: str, key: str, payload: bytes, rounds: int, queue) -> None:
    cache = Cache(Path(root))
    seen = set()
    for _ in range(rounds):
        cache.put(key, payload)
        got = cache.get(key)
        seen.add(got == payload)
    queue.put(seen)


def test_concurrent_writers_and_readers_see_whole_entries(tmp_path):
    key = cache_key(TEXT, FLAGS, "v")
    payload = os.urandom(1 << 20)  # big enough that a torn write would be visible
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), key, payload, 15, queue)) for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert all(r == {True} for r in results)
    assert Cache(tmp_path).get(key) == payload
    assert len(list((tmp_path / key[:2]).iterdir())) == 1
