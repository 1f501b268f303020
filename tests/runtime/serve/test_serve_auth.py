"""The server's token file, roles, loopback test and repository-path check, on their own (no server)."""

from __future__ import annotations

import pytest
from planc.runtime.serve.access import Outside, inside
from planc.runtime.serve.auth import AuthError, Tokens, is_loopback

GOOD = "# who roles token\nann review,infer aaaaaaaaaaaaaaaa1\nops admin bbbbbbbbbbbbbbbb2  # the operator\n"


def test_tokens_identify_their_holder_and_roles():
    tokens = Tokens.parse(GOOD, "tokens")
    ann = tokens.identify("Bearer aaaaaaaaaaaaaaaa1")
    assert ann is not None and ann.name == "ann" and ann.may("review") and ann.may("infer") and not ann.may("admin")
    ops = tokens.identify("bearer  bbbbbbbbbbbbbbbb2 ")
    assert ops is not None and ops.may("review") and ops.may("admin")  # admin may everything
    for header in (None, "", "Bearer", "Bearer aaaaaaaaaaaaaaaa", "Basic aaaaaaaaaaaaaaaa1", "aaaaaaaaaaaaaaaa1"):
        assert tokens.identify(header) is None
    env = Tokens.parse("ann infer aaaaaaaaaaaaaaaa1;ops admin bbbbbbbbbbbbbbbb2", "$PLANRT_SERVE_TOKENS")
    assert env.identify("Bearer bbbbbbbbbbbbbbbb2").name == "ops"


@pytest.mark.parametrize(("text", "message"), [
    ("ann review", "tokens:1: expected 'NAME ROLE[,ROLE] TOKEN', found 2 field(s)"),
    ("ann reviewer aaaaaaaaaaaaaaaa1", "tokens:1: unknown role(s) reviewer; expected one of: infer, review, admin"),
    ("ann review short", "tokens:1: the token of 'ann' is shorter than 16 characters"),
    ("ann review aaaaaaaaaaaaaaaa1\nbob infer aaaaaaaaaaaaaaaa1", "tokens:2: the token of 'bob' is also another"),
    ("ann review aaaaaaaaaaaaaaaa1\nann infer cccccccccccccccc3", "tokens:2: 'ann' is listed twice"),
    ("# nothing\n", "no tokens given"),
])
def test_a_bad_token_file_is_said_with_its_line(text, message):
    with pytest.raises(AuthError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        Tokens.parse(text, "tokens")


def test_loopback_addresses():
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.5", "example.com", ""]))


def test_repository_paths_stay_inside(tmp_path):
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    (repo / "a.planb").write_text("x")
    (repo / "escape.planb").symlink_to(tmp_path / "secret.planb")
    assert inside(repo, "a.planb") == (repo / "a.planb").resolve()
    assert inside(repo, str(repo / "sub" / ".." / "a.planb")) == (repo / "a.planb").resolve()
    for bad in ("../secret.planb", str(tmp_path / "secret.planb"), "/etc/passwd", "escape.planb", "sub/../../x"):
        with pytest.raises(Outside, match="outside the repository directory"):
            inside(repo, bad)
    with pytest.raises(Outside, match="needs --repository-dir"):
        inside(None, "a.planb")
