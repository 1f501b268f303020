"""Where a loaded bundle's resident memory goes, step by step (issue 29).

Loads BUNDLE the way `Runner` does, one step at a time, and prints how much VmRSS (and of it
anonymous memory, RssAnon) each step adds: mapping and verifying the bundle (the parameter
archive's pages stay resident), opening the IREE device (for local-task: its worker threads),
indexing the archive, reading the chosen module out of the bundle, IREE's copy of it, the
io_parameters module and the VM context (the module's initializer, its executables).

Usage: .venv/bin/python benchmarks/rss_breakdown.py BUNDLE [TARGET]
(TARGET defaults to the first of the module's variants this host can run).
"""

from __future__ import annotations

import sys

import iree.runtime as rt
from planc.runtime.bundle.loader import load_bundle
from planc.runtime.engine.modules import Device
from planc.runtime.engine.params import parameters_of
from planc.runtime.host.detect import choose_variant, detect


def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))


def main(argv: list[str]) -> int:
    last = [_status("VmRSS"), _status("RssAnon")]
    total = last[0]

    def step(what: str) -> None:
        rss, anon = _status("VmRSS"), _status("RssAnon")
        print(f"| {what} | {(rss - last[0]) / 1e6:.2f} MB | {(anon - last[1]) / 1e6:.2f} MB |")
        last[:] = [rss, anon]

    print("| step | VmRSS added | of it anonymous |\n|---|---:|---:|")
    bundle = load_bundle(argv[0])
    step("load_bundle (map, verify, keep the archive's pages)")
    mods = bundle.records.modules
    devices, modules = {}, []
    params = None
    for name, mod in sorted(mods.items()):
        target = argv[1] if len(argv) > 1 else choose_variant(mod.variants, detect(), module=name)
        variant = bundle.manifest["modules"][name]["variants"][target]
        driver = variant.get("driver") or "local-sync"  # as choice.py
        if driver not in devices:
            devices[driver] = Device(driver)
            step(f"Device({driver})")
        if mod.parameters and params is None:
            params = parameters_of(bundle.manifest, bundle.read)
            step("ParameterIndex over the archive")
        vmfb = bundle.read(variant["path"])
        step(f"{name}: read {target} ({len(vmfb) / 1e6:.2f} MB)")
        dev = devices[driver]
        module = rt.VmModule.copy_buffer(dev.instance, vmfb)
        del vmfb
        step(f"{name}: VmModule.copy_buffer")
        extra = [params.module(dev.instance)] if mod.parameters and params is not None else []
        modules.append(rt.VmContext(dev.instance, modules=[dev._hal_module, *extra, module]))
        step(f"{name}: VmContext (io_parameters, initializer, executables)")
    weights = (bundle.manifest.get("parameters") or {}).get("bytes", 0)
    print(f"\ntotal {(last[0] - total) / 1e6:.2f} MB; distinct weights {weights / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
