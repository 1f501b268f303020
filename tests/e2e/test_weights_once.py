"""Every example bundle holds its weights once, in one parameter archive; a slim bundle runs the same."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from e2e_support import PLANS, example_inputs
from planc.compiler.bundle.slim import SlimError, slim_bundle
from planc.runtime.bundle.loader import load_bundle
from planc.runtime.engine.runner import RunConfig, Runner
from planc.runtime.host.detect import parse_host_spec

pytestmark = pytest.mark.iree


def _archive_keys(bundle) -> list[str]:
    import iree.runtime as rt

    index = rt.ParameterIndex()
    index.load_from_file_handle(rt.FileHandle.wrap_memory(bundle.read("params/weights.irpa")), "irpa")
    return sorted(k for k, _ in index.items())


@pytest.mark.parametrize("plan", [p for _, p in PLANS])
def test_weights_are_stored_once(bundles, plan):
    bundle = load_bundle(bundles[plan].path)
    m = bundle.manifest
    archives = [p for p in bundle.members if p.endswith(".irpa")]
    if "parameters" not in m:
        pytest.skip(f"{plan} has no constant of 1 KiB or more")
    assert archives == [m["parameters"]["path"]]
    keys = _archive_keys(bundle)
    assert keys == sorted({k for mod in m["modules"].values() for k in mod.get("parameters", ())})
    index_bytes = bytes(bundle.read(m["parameters"]["path"]))
    # No module variant and no MLIR source carries a copy: look for a 64-byte run of each weight.
    import iree.runtime as rt

    index = rt.ParameterIndex()
    index.load_from_file_handle(rt.FileHandle.wrap_memory(index_bytes), "irpa")
    for key, entry in index.items():
        data = rt.parameter_index_entry_as_numpy_flat_ndarray(entry).tobytes()
        assert hashlib.sha256(data).hexdigest() == key
        probe = data[len(data) // 2:len(data) // 2 + 64]
        for p in bundle.members:
            if not p.endswith(".irpa"):
                assert probe not in bundle.read(p), f"{p} holds a copy of parameter {key[:12]}"
                assert probe.hex().upper() not in bundle.read(p).decode("latin-1"), p


def test_slim_bundle_runs_like_the_full_one(bundles, tmp_path, tool_env):
    full = load_bundle(bundles["defects"].path)
    res = slim_bundle(full, tmp_path / "slim.planb", host=parse_host_spec("x86_64:x86-64-v3"), spec="x86_64:x86-64-v3")
    slim = load_bundle(res.path)  # verified like any bundle
    assert slim.manifest["targets"] == ["x86_64-avx2"]
    assert all(list(mod["variants"]) == ["x86_64-avx2"] for mod in slim.manifest["modules"].values())
    assert slim.manifest["slim"] == {"from": full.sha256, "for": "x86_64:x86-64-v3"}
    assert res.bytes_after < res.bytes_before and "params/weights.irpa" in slim.members
    assert not [p for p in slim.members if p.startswith("mlir/")]
    kept = slim_bundle(full, tmp_path / "kept.planb", targets=("aarch64-neon",), keep_mlir=True)
    assert [p for p in kept.dropped if p.startswith("mlir/")] == []
    inputs = example_inputs(full.manifest)
    outs = []
    for b in (full, slim):
        runner = Runner(b, RunConfig(tool_env=tool_env, host=parse_host_spec("x86_64:x86-64-v3")))
        try:
            outs.append(runner.run(inputs)[0].outputs)
        finally:
            runner.close()
    for name, value in outs[0].items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(outs[1][name], value)
    with pytest.raises(SlimError, match="no variant for host"):
        slim_bundle(full, tmp_path / "none.planb", host=parse_host_spec("riscv64"), spec="riscv64")


def test_slim_bundle_is_signed_like_a_full_one(bundles, tmp_path):
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from planc.compiler.cli import main as planc_main
    from planc.runtime.bundle.signature import Unsigned
    from planc.runtime.bundle.trust import Trust

    key = ed25519.Ed25519PrivateKey.generate()
    priv, pub = tmp_path / "k.pem", tmp_path / "k.pub"
    priv.write_bytes(key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo))
    out = tmp_path / "edge.planb"
    assert planc_main(["slim", str(bundles["defects"].path), "--for", "aarch64:neon", "-o", str(out),
                       "--sign", str(priv)]) == 0
    signed = load_bundle(out, trust=Trust.from_paths([pub]))
    assert signed.signer is not None and signed.signer.verified
    assert signed.manifest["targets"] == ["aarch64-neon"] and "params/weights.irpa" in signed.members
    with pytest.raises(Unsigned):  # the full bundle was not signed; its slim copy without --sign is not either
        load_bundle(slim_bundle(load_bundle(bundles["defects"].path), tmp_path / "u.planb",
                                targets=("aarch64-neon",)).path, trust=Trust.from_paths([pub]))
