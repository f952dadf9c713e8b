"""Tokens for `logo serve`: made once and shown once, kept hashed (0600, atomic), checked in constant time,
revoked at once; and the `logo token` commands."""

from __future__ import annotations

import errno
import json
import stat
import threading
from pathlib import Path

import pytest

from logo_cli import tokens
from logo_cli.errors import NotFound, StoreError, UsageError

from .helpers import lines, run


def test_a_token_is_shown_once_and_kept_hashed(tmp_path: Path) -> None:
    made = tokens.create(tmp_path, user="maya", note="the app")
    assert made.token.startswith(f"logo_{made.grant.id}_") and len(made.token) > 40
    path = tmp_path / "tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = json.loads(path.read_text())["tokens"]
    assert stored[0]["sha256"] == tokens.digest(made.token) and made.token not in path.read_text()
    assert not list(tmp_path.glob(".tokens.json.*"))  # the temporary file was renamed over it
    keyring = tokens.Keyring(tmp_path)
    assert keyring.check(made.token) == made.grant and made.grant.may_act_for("maya")
    assert not made.grant.may_act_for("hollis")
    for wrong in ("", "logo_", made.token[:-1], made.token + "x", f"logo_{made.grant.id}_x", "Bearer " + made.token):
        assert keyring.check(wrong) is None


def test_admin_and_user_are_exclusive(tmp_path: Path) -> None:
    admin = tokens.create(tmp_path, admin=True)
    assert admin.grant.admin and admin.grant.may_act_for("anyone") and admin.grant.user is None
    for bad in ({}, {"user": "maya", "admin": True}, {"user": "  "}):
        with pytest.raises(UsageError):
            tokens.create(tmp_path, **bad)  # type: ignore[arg-type]


def test_revoking_takes_effect_at_the_next_check(tmp_path: Path) -> None:
    keep, drop = tokens.create(tmp_path, user="a"), tokens.create(tmp_path, user="b")
    keyring = tokens.Keyring(tmp_path)
    assert keyring.check(drop.token) is not None
    assert tokens.revoke(tmp_path, drop.grant.id).id == drop.grant.id
    assert keyring.check(drop.token) is None and keyring.check(keep.token) is not None
    assert tokens.revoke(tmp_path, keep.token).id == keep.grant.id  # by the token itself, too
    with pytest.raises(NotFound):
        tokens.revoke(tmp_path, "nope")
    assert len(keyring) == 0


def test_concurrent_creates_lose_nothing(tmp_path: Path) -> None:
    made: list[tokens.NewToken] = []
    threads = [threading.Thread(target=lambda: made.append(tokens.create(tmp_path, user="u"))) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    keyring = tokens.Keyring(tmp_path)
    assert len(keyring) == 20 and all(keyring.check(m.token) for m in made)


def test_a_broken_file_is_an_error_not_an_open_door(tmp_path: Path) -> None:
    (tmp_path / "tokens.json").write_text("{not json")
    with pytest.raises(StoreError):
        tokens.Keyring(tmp_path).check("logo_x_y")


def test_the_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGO_HOME", str(tmp_path))
    code, out, err = run("token", "create", "--user", "maya", "--note", "web app")
    assert code == 0 and "Shown once" in err
    made = lines(out)[0]
    assert made["user"] == "maya" and not made["admin"] and made["token"].startswith("logo_")
    code, out, _ = run("token", "list")
    assert code == 0 and [row["id"] for row in lines(out)] == [made["id"]] and "token" not in lines(out)[0]
    assert run("token", "create")[0] == 2
    assert run("token", "create", "--user", "x", "--admin")[0] == 2
    assert run("token", "revoke", "nope")[0] == 4
    code, out, _ = run("token", "revoke", made["id"])
    assert code == 0 and lines(out)[0]["revoked"]["id"] == made["id"]
    assert lines(run("token", "list")[1]) == []


def test_a_read_only_home_is_a_store_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run as root, whom a 0555 folder does not stop: the lock file's open fails as it would for others."""

    def read_only(path: object, *args: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setenv("LOGO_HOME", str(tmp_path))
    monkeypatch.setattr(tokens, "open", read_only, raising=False)
    code, _, err = run("token", "create", "--user", "maya")
    assert code == 6 and f"LOGO_HOME {tmp_path} is not writable (Read-only file system)" in err
