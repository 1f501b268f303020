"""`planc check` and `planc fmt` through planc.compiler.cli.main, and once as a real process."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from dsl_helpers import EXAMPLES, plan
from planc.compiler import cli
from planc.dsl.format import format_module
from planc.dsl.parser import parse

BAD = plan("task a = mm(x)", "output a")  # E0103 at 5:12
WARN_ONLY = plan("task a = t(x) backoff 1s..2s", "output a")  # W0001, and m unused: W0003
UGLY = "plan p {\ninput x: f32[]\n  tool t = exec \"t.sh\"\ntask a = t(x)   retry 2\noutput a}\n"


def _write(tmp_path: Path, name: str, content: str | bytes) -> str:
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(p)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def test_check_clean_examples(capsys) -> None:
    rc, out, err = _run(capsys, "check", *map(str, EXAMPLES))
    assert rc == 0 and out == "" and f"checked {len(EXAMPLES)} files: no problems" in err


def test_check_reports_errors_rustc_style(tmp_path, capsys) -> None:
    path = _write(tmp_path, "bad.plan", BAD)
    rc, _, err = _run(capsys, "check", path)
    assert rc == 1
    assert "error[E0103]: unknown model, tool or builtin 'mm'" in err
    assert f"--> {path}:5:12" in err
    assert "5 |   task a = mm(x)" in err and "^^ not defined" in err
    assert "checked 1 file: 1 error, 0 warnings" in err  # no "unused" echo after an error


def test_warnings_print_but_exit_zero(tmp_path, capsys) -> None:
    rc, _, err = _run(capsys, "check", _write(tmp_path, "w.plan", WARN_ONLY))
    assert rc == 0 and "warning[W0001]" in err and "warning[W0003]" in err


def test_check_json(tmp_path, capsys) -> None:
    bad = _write(tmp_path, "bad.plan", BAD)
    warn = _write(tmp_path, "warn.plan", WARN_ONLY)
    rc, out, _ = _run(capsys, "check", "--json", bad, warn, str(EXAMPLES[0]), str(tmp_path / "missing.plan"))
    assert rc == 1
    items = json.loads(out)
    by_code = {d["code"]: d for d in items}
    assert by_code["E0103"]["file"] == bad and (by_code["E0103"]["line"], by_code["E0103"]["col"]) == (5, 12)
    assert by_code["E0103"]["help"] == "did you mean 'm'?"
    assert by_code["E0004"]["file"].endswith("missing.plan") and "line" not in by_code["E0004"]
    assert {d["severity"] for d in items} == {"error", "warning"}


@pytest.mark.parametrize(("name", "content", "needle"), [
    ("dir", None, "is a directory"),
    ("missing.plan", None, "No such file"),
    ("latin1.plan", "plan caf\xe9 {}".encode("latin-1"), "not valid UTF-8 (byte 0xe9 on line 1)"),
    ("garbage.plan", bytes(range(256)) * 4, "not valid UTF-8"),
    ("controls.plan", bytes(range(1, 128)), "error[E0002]: unexpected character"),
    ("nul.plan", b"plan p {\x00}", "error[E0002]: unexpected character '\\x00'"),
])
def test_unreadable_and_binary_inputs_are_diagnostics(tmp_path, capsys, name, content, needle) -> None:
    path = tmp_path / name
    if name == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    for command in ("check", "fmt"):
        rc, _, err = _run(capsys, command, str(path))
        assert rc == 1 and needle in err, err


def test_empty_file_is_a_warning(tmp_path, capsys) -> None:
    rc, _, err = _run(capsys, "check", _write(tmp_path, "empty.plan", ""))
    assert rc == 0 and "warning[W0004]: file has no plan" in err


def test_fmt_check_lists_files_and_changes_nothing(tmp_path, capsys) -> None:
    ugly = _write(tmp_path, "ugly.plan", UGLY)
    clean = _write(tmp_path, "clean.plan", format_module(parse(UGLY)))
    rc, out, err = _run(capsys, "fmt", "--check", ugly, clean)
    assert rc == 1 and out == f"would reformat {ugly}\n"
    assert "1 file would be reformatted, 1 unchanged" in err
    assert Path(ugly).read_text() == UGLY


def test_fmt_rewrites_in_place_keeping_the_mode(tmp_path, capsys) -> None:
    ugly = _write(tmp_path, "ugly.plan", UGLY)
    os.chmod(ugly, 0o640)
    rc, _, err = _run(capsys, "fmt", ugly)
    assert rc == 0 and "1 file reformatted" in err
    text = Path(ugly).read_text()
    assert text == format_module(parse(UGLY)) and "  task a = t(x)\n      retry 2\n" in text
    assert stat.S_IMODE(os.stat(ugly).st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["ugly.plan"]  # no temporary left behind
    rc, _, _ = _run(capsys, "fmt", "--check", ugly)
    assert rc == 0


def test_fmt_diff_prints_and_keeps_the_file(tmp_path, capsys) -> None:
    ugly = _write(tmp_path, "ugly.plan", UGLY)
    rc, out, _ = _run(capsys, "fmt", "--diff", ugly)
    assert rc == 0 and out.startswith(f"--- a/{ugly}\n+++ b/{ugly}\n")
    assert "-task a = t(x)   retry 2\n" in out and "+  task a = t(x)\n" in out
    assert Path(ugly).read_text() == UGLY


def test_fmt_refuses_a_file_with_syntax_errors(tmp_path, capsys) -> None:
    broken = _write(tmp_path, "broken.plan", "plan p { task a = }\n")
    rc, _, err = _run(capsys, "fmt", broken)
    assert rc == 1 and "error[E0001]" in err and "1 failed" in err
    assert Path(broken).read_text() == "plan p { task a = }\n"


def test_an_internal_error_says_it_is_one(tmp_path, capsys, monkeypatch) -> None:
    import planc.compiler.commands.check as command

    def boom(module):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(command, "check", boom)
    rc = cli.main(["check", str(EXAMPLES[0])])
    err = capsys.readouterr().err
    assert rc == 70 and "error[E9999]: internal compiler error" in err and "simulated bug" in err


def _planc() -> str:
    exe = Path(sys.executable).parent / "planc"
    return str(exe) if exe.exists() else shutil.which("planc") or pytest.skip("planc script not installed")


def test_installed_script_in_a_subprocess(tmp_path) -> None:
    planc = _planc()
    ok = subprocess.run([planc, "check", *map(str, EXAMPLES)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    bad = _write(tmp_path, "bad.plan", BAD)
    res = subprocess.run([planc, "check", "--json", bad], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and json.loads(res.stdout)[0]["code"] == "E0103"
    fmt = subprocess.run([planc, "fmt", "-"], input=UGLY, capture_output=True, text=True, timeout=60)
    assert fmt.returncode == 0 and fmt.stdout == format_module(parse(UGLY)) and fmt.stderr == ""
    piped = subprocess.run([planc, "check", "-"], input=BAD, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 1 and "--> <stdin>:5:12" in piped.stderr


def test_every_shipped_plan_is_canonical() -> None:
    """`planc fmt --check` over every example plan and every runnable test plan exits 0 (the real CLI,
    as a user runs it; the golden inputs of the front-end tests are deliberately not canonical)."""
    root = Path(__file__).resolve().parents[2]
    plans = sorted(str(p.relative_to(root)) for p in [*root.glob("examples/**/*.plan"),
                                                      *root.glob("tests/*/plans/**/*.plan")])
    assert any(p.startswith("examples/") for p in plans)
    planc = Path(sys.executable).with_name("planc")
    out = subprocess.run([str(planc), "fmt", "--check", *plans], cwd=root, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
