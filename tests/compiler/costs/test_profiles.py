"""Device profiles: the shipped file, user files merged over it, and every error a profile can have."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from planc.compiler.codegen.targets import Target
from planc.compiler.costs.profiles import (
    DTYPE_FALLBACK,
    DeviceClass,
    ProfileError,
    load_profile,
    shipped_profile_path,
)

GIB = 2**30


@pytest.fixture(scope="module")
def profile():
    return load_profile()


@pytest.fixture(scope="module")
def raw():
    with open(shipped_profile_path(), "rb") as f:
        return tomllib.load(f)


def write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_devices_cover_every_target_in_the_brief(profile):
    assert {"x86_64-avx2", "x86_64-avx512", "aarch64-neon", "cuda-sm80", "cuda-sm90", "vmvx"} <= set(profile.devices)
    for spec in profile.devices.values():
        assert spec.target is Target.parse(spec.name)
        assert set(spec.peak_flops) >= {"f32", "f16", "bf16", "i8"}
        assert min(spec.peak_flops.values()) > 0 and spec.mem_bandwidth > 0 and spec.memory_bytes > 0
        assert 0 <= spec.power_idle_w < spec.power_busy_w


def test_units_are_converted_from_the_file(profile, raw):
    for name, t in raw["devices"].items():
        spec = profile.devices[name]
        assert spec.peak_flops["f32"] == pytest.approx(t["peak_gflops"]["f32"] * 1e9)
        assert spec.mem_bandwidth == pytest.approx(t["mem_bandwidth_gbs"] * 1e9)
        assert spec.dispatch_overhead == pytest.approx(t["dispatch_us"] * 1e-6)
        assert spec.memory_bytes == pytest.approx(t["memory_gib"] * GIB)
    for name, t in raw["links"].items():
        assert profile.links[name].bandwidth == pytest.approx(t["bandwidth_gbs"] * 1e9)
        assert profile.links[name].latency == pytest.approx(t["latency_us"] * 1e-6)
    assert profile.tool_time_s == pytest.approx(raw["defaults"]["tool_time_ms"] / 1e3)


def test_cpu_peaks_follow_cores_clock_pipes_lanes():
    # cores * clock * FMA pipes * f32 lanes * 2, as the file's comments derive them.
    prof = load_profile()
    assert prof.devices["x86_64-avx2"].peak("f32") == pytest.approx(8 * 3.8e9 * 2 * 8 * 2)
    assert prof.devices["x86_64-avx512"].peak("f32") == pytest.approx(32 * 2.0e9 * 2 * 16 * 2)
    assert prof.devices["aarch64-neon"].peak("f32") == pytest.approx(4 * 2.4e9 * 2 * 4 * 2)


def test_every_device_and_link_number_cites_a_source():
    text = shipped_profile_path().read_text()
    for section in re.split(r"\n(?=\[(?:devices|links)\.)", text)[1:]:
        numbers = re.findall(r"^(\w+)\s*=\s*[\d{]", section, flags=re.MULTILINE)
        comments = [line for line in section.splitlines() if line.lstrip().startswith("#")]
        assert numbers and len(comments) >= 2, section.splitlines()[0]


def test_dtype_fallbacks(profile):
    spec = profile.devices["cuda-sm80"]
    for dtype, (base, scale) in DTYPE_FALLBACK.items():
        assert spec.peak(dtype) == pytest.approx(spec.peak(base) * scale)
    with pytest.raises(ValueError, match="no peak for dtype 'f64'"):
        spec.peak("f64")


@pytest.mark.parametrize("name, devices", [
    ("edge-x86-gpu", {"cpu0": "x86_64-avx2", "gpu0": "cuda-sm80"}),
    ("arm-board", {"cpu0": "aarch64-neon"}),
    ("server-2gpu", {"cpu0": "x86_64-avx512", "gpu0": "cuda-sm90", "gpu1": "cuda-sm90"}),
    ("x86-only", {"cpu0": "x86_64-avx512"}),
    ("edge-avx2", {"cpu0": "x86_64-avx2"}),
])
def test_shipped_deployments(profile, name, devices):
    dep = profile.deployment(name)
    assert {d.name: d.kind for d in dep.devices} == devices
    assert dep.host == "cpu0" and dep.pue >= 1.0


def test_routes(profile):
    dep = profile.deployment("server-2gpu")
    assert [x.name for x in dep.route("gpu0", "gpu1")] == ["nvlink4"]
    assert [x.name for x in dep.route("gpu1", "cpu0")] == ["pcie5-x16"]
    assert profile.deployment("edge-x86-gpu").route("cpu0", "gpu0")[0].name == "pcie4-x16"
    assert profile.deployment("edge-x86-arm").route("cpu1", "cpu0")[0].name == "eth-1g"
    with pytest.raises(ProfileError, match="no device 'gpu2', did you mean 'gpu1'"):
        dep.route("cpu0", "gpu2")


def test_unknown_deployment_suggests_and_lists(profile):
    with pytest.raises(ProfileError) as err:
        profile.deployment("server-2gpus")
    msg = str(err.value)
    assert "did you mean 'server-2gpu'?" in msg and "devices.toml" in msg
    assert "known deployments: arm-board, edge-avx2" in msg


def test_device_class_parse_lists_choices():
    assert DeviceClass.parse("gpu") is DeviceClass.GPU
    with pytest.raises(ValueError, match="expected one of: cpu, gpu"):
        DeviceClass.parse("tpu")


USER = """
schema = 1
[devices.cuda-sm80]
memory_gib = 40.0
mem_bandwidth_gbs = 1555.0

[deployments.lab]
description = "the lab box"
pue = 1.2
host = "cpu0"
devices = { cpu0 = "x86_64-avx2", gpu0 = "cuda-sm80", box1 = "aarch64-neon" }
links = [{ a = "cpu0", b = "gpu0", link = "pcie4-x16" }, { a = "cpu0", b = "box1", link = "eth-10g" }]
"""


def test_user_file_overrides_a_device_and_adds_a_deployment(profile, tmp_path):
    path = write(tmp_path, USER)
    dep = profile.deployment(str(path))
    assert dep.name == "lab" and dep.source == str(path)
    gpu = dep.device("gpu0").spec
    assert gpu.memory_bytes == 40 * GIB and gpu.mem_bandwidth == 1555e9
    shipped = profile.devices["cuda-sm80"]
    assert gpu.peak_flops == shipped.peak_flops and gpu.power_busy_w == shipped.power_busy_w
    # The override applies to the shipped deployments of the merged profile too.
    merged = profile.with_file(path)
    assert merged.deployments["edge-x86-gpu"].device("gpu0").spec.memory_bytes == 40 * GIB
    assert [x.name for x in dep.route("gpu0", "box1")] == ["pcie4-x16", "eth-10g"]
    assert profile.devices["cuda-sm80"].memory_bytes == 80 * GIB  # the original is untouched


def test_user_file_with_a_name_and_with_several_deployments(profile, tmp_path):
    path = write(tmp_path, USER + '\n[deployments.lab2]\npue = 1.0\nhost = "c"\ndevices = { c = "vmvx" }\n')
    with pytest.raises(ProfileError, match=r"defines 2 deployments \(lab, lab2\); name one as .*:NAME"):
        profile.deployment(str(path))
    assert profile.deployment(f"{path}:lab2").names == ("c",)
    assert profile.deployment(f"{path}:edge-avx2").name == "edge-avx2"
    with pytest.raises(ProfileError, match="unknown deployment 'lab3', did you mean 'lab'[?]"):
        profile.deployment(f"{path}:lab3")


def test_load_profile_with_extra_files_and_defaults(tmp_path):
    path = write(tmp_path, "schema = 1\n[defaults]\ntool_time_ms = 250\n")
    prof = load_profile(extra=[path])
    assert prof.tool_time_s == 0.25 and prof.sources[-1] == str(path)
    merged, dep = load_profile().select(str(write(tmp_path, USER + "[defaults]\ntool_time_ms = 5\n", "u.toml")))
    assert merged.tool_time_s == 0.005 and dep.name == "lab"


@pytest.mark.parametrize("text, key, problem", [
    ("schema = 2\n", "schema", "unsupported schema 2: this planc reads schema 1"),
    ("[devices.x]\n", "schema", "missing"),
    ("schema = 1\nfoo = 1\n", "foo", "unknown key"),
    ("schema = 1\n[devices.x86_64-avx2]\nmem_bandwith_gbs = 3\n", "devices.x86_64-avx2.mem_bandwith_gbs",
     "did you mean 'mem_bandwidth_gbs'?"),
    ("schema = 1\n[devices.cuda-sm80]\nmemory_gib = -1\n", "devices.cuda-sm80.memory_gib",
     "expected a positive number, found -1"),
    ("schema = 1\n[devices.cuda-sm80]\nmemory_gib = \"big\"\n", "devices.cuda-sm80.memory_gib", "found 'big'"),
    ("schema = 1\n[devices.cuda-sm80]\nclass = \"tpu\"\n", "devices.cuda-sm80.class", "expected one of: cpu, gpu"),
    ("schema = 1\n[devices.my-cpu]\nclass = \"cpu\"\n", "devices.my-cpu.target", "unknown target 'my-cpu'"),
    ("schema = 1\n[links.wifi]\nlatency_us = 3\n", "links.wifi.bandwidth_gbs", "missing"),
    ("schema = 1\n[deployments.d]\npue = 1\nhost = \"c\"\ndevices = { c = \"x86_64-avx3\" }\n",
     "deployments.d.devices.c", "unknown device 'x86_64-avx3', did you mean 'x86_64-avx2'?"),
    ("schema = 1\n[deployments.d]\npue = 1\nhost = \"cpu1\"\ndevices = { cpu0 = \"vmvx\" }\n",
     "deployments.d.host", "unknown device instance 'cpu1', did you mean 'cpu0'?"),
    ("schema = 1\n[deployments.d]\npue = 0.9\nhost = \"c\"\ndevices = { c = \"vmvx\" }\n",
     "deployments.d.pue", "at least 1.0"),
    ("schema = 1\n[deployments.d]\npue = 1\nhost = \"c\"\ndevices = { c = \"vmvx\", g = \"cuda-sm80\" }\n",
     "deployments.d.links", "no route from 'c' to 'g'"),
    (("schema = 1\n[deployments.d]\npue = 1\nhost = \"c\"\ndevices = { c = \"vmvx\", g = \"cuda-sm80\" }\n"
      "links = [{ a = \"c\", b = \"g\", link = \"pcie9\" }]\n"), "deployments.d.links[0].link", "unknown link 'pcie9'"),
    ("schema = 1\n[deployments.d]\npue = 1\nhost = \"c\"\n", "deployments.d.devices", "missing"),
    ("schema = 1\n[devices]\nx = 3\n", "devices.x", "expected a table"),
    ("schema = [1\n", "-", "not valid TOML"),
])
def test_errors_name_file_key_and_problem(tmp_path, text, key, problem):
    path = write(tmp_path, text)
    with pytest.raises(ProfileError) as err:
        load_profile(extra=[path])
    assert err.value.file == str(path)
    assert err.value.key == key
    assert problem in err.value.problem
    assert str(err.value).startswith(f"{path}: {key}: ")


def test_missing_file(tmp_path):
    with pytest.raises(ProfileError, match="no such file"):
        load_profile(tmp_path / "nope.toml")
    with pytest.raises(ProfileError, match="no such file"):
        load_profile().deployment(str(tmp_path / "nope.toml"))


def test_a_users_own_profile_file_alone(tmp_path):
    path = write(tmp_path, """schema = 1
[devices.x86_64-avx2]
class = "cpu"
peak_gflops = { f32 = 100, f16 = 100, bf16 = 100, i8 = 200 }
mem_bandwidth_gbs = 10
dispatch_us = 5
memory_gib = 4
power_idle_w = 1
power_busy_w = 10
[deployments.tiny]
pue = 1
host = "cpu0"
devices = { cpu0 = "x86_64-avx2" }
""")
    prof = load_profile(path)
    assert set(prof.devices) == {"x86_64-avx2"} and set(prof.deployments) == {"tiny"}
    assert prof.tool_time_s == 0.1  # the default when the file has no [defaults]
