"""Everyday commands: users, stats, history, paths, config (with config.toml precedence), and the README."""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from logo_cli.cli import app

from .helpers import ROOT, run

runner = CliRunner()


@pytest.fixture
def built(fake_env: Path, population: Path) -> Path:
    assert run("ingest", str(population))[0] == 0
    assert run("build-global", "--clusters", "3")[0] == 0
    return fake_env


def test_users_and_stats_right_after_ingest(fake_env: Path, population: Path) -> None:
    """Before any build-global: users and stats come from the store; global memory's columns come later."""
    assert run("users")[0] == 4  # no store yet: nothing ingested
    assert run("ingest", str(population))[0] == 0
    code, out, _ = run("users")
    rows = [json.loads(line) for line in out.splitlines()]
    assert (
        code == 0
        and len(rows) == 14
        and rows[0]
        == {
            "user": "narrow",
            "records": 30,
            "first": rows[0]["first"],
            "last": rows[0]["last"],
        }
    )
    assert rows[0]["first"] < rows[0]["last"]
    stats = json.loads(run("stats")[1])
    assert stats["users"] == 14 and stats["records"] == 175 and stats["global"] is None
    assert run("build-global", "--clusters", "3")[0] == 0
    rows = [json.loads(line) for line in run("users")[1].splitlines()]
    assert rows[0]["user"] == "narrow" and rows[0]["history"] == 30 and "diversity" in rows[0]


def test_users_stats_history(built: Path, population: Path) -> None:
    code, out, _ = run("users")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 14 and rows[0]["user"] == "narrow" and rows[0]["history"] == 30
    code, out, _ = run("stats")
    stats = json.loads(out)
    assert stats["records"] == 175 and stats["users"] == 14 and stats["global"]["stale"] is False
    assert stats["global"]["records"] == 175  # what the build counted, exact, beside the store's count
    assert stats["embedder"] == "fake:256" and stats["store_bytes"] > 0
    extra = population.parent / "extra.jsonl"
    extra.write_text('{"user": "late", "text": "a brand new note"}\n')
    run("ingest", str(extra))
    assert json.loads(run("stats")[1])["global"]["stale"] is True
    code, out, _ = run("history", "--user", "cook1", "--limit", "3")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 3 and rows[0]["timestamp"] > rows[1]["timestamp"] > rows[2]["timestamp"]
    assert run("history", "--user", "nobody")[0] == 4


def test_stats_counts_the_records_a_private_build_saw_exactly(built: Path) -> None:
    assert run("build-global", "--epsilon", "3", "--seed", "1")[0] == 0
    built_global = json.loads(run("stats")[1])["global"]
    assert built_global["records"] == 175 and built_global["stale"] is False  # the operator's exact view
    assert built_global["records_released"] is not None  # the noisy sum answers show, labelled as such


def test_paths_and_config_precedence(fake_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run("paths")
    paths = json.loads(out)
    assert code == 0 and paths["home"] == str(fake_env) and paths["store"] == str(fake_env / "store")
    fake_env.mkdir(parents=True, exist_ok=True)
    (fake_env / "config.toml").write_text('threads = 1\nctx = 1024\nmodel = "from-toml.gguf"\n')
    config = json.loads(run("config")[1])
    named = {"env": "LOGO_THREADS", "config_key": "threads"}  # how to set it, beside where it came from
    assert config["n_threads"] == {"value": 1, "source": "config.toml"} | named
    assert config["n_ctx"] == {"value": 1024, "source": "config.toml", "env": "LOGO_CTX", "config_key": "ctx"}
    assert config["model"]["source"] == "env LOGO_MODEL"  # the environment wins over the file
    monkeypatch.setenv("LOGO_THREADS", "3")
    assert json.loads(run("config")[1])["n_threads"] == {"value": 3, "source": "env LOGO_THREADS"} | named
    config = json.loads(run("config", "--model", "flag.gguf")[1])
    assert config["model"] == {"value": "flag.gguf", "source": "flag", "env": "LOGO_MODEL", "config_key": "model"}
    monkeypatch.delenv("LOGO_THREADS")
    (fake_env / "config.toml").write_text("threads = 0\n")
    code, _, err = run("config")
    assert code == 2 and "`threads` must be a whole number of at least 1" in err
    (fake_env / "config.toml").write_text("colour = 'blue'\n")
    code, _, err = run("config")
    assert code == 2 and "unknown keys" in err


def test_every_command_is_in_the_readme_with_help() -> None:
    readme = (ROOT / "README.md").read_text()
    names = []
    for command in app.registered_commands:
        names.append(command.name)
    for group in app.registered_groups:
        for sub in group.typer_instance.registered_commands:
            names.append(f"{group.name} {sub.name}")
    assert len(names) >= 15
    for name in names:
        assert re.search(rf"`logo {re.escape(name)}\b", readme), f"`logo {name}` is not documented in README.md"
        code, out, _ = run(*name.split(), "--help")
        assert code == 0 and "Example" in out and len(out) > 300, name


def test_quiet_and_verbose(built: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user": "a", "text": "ok"}\nnot json\n')
    result = runner.invoke(app, ["--quiet", "ingest", "--skip-invalid", str(bad)])
    assert result.exit_code == 0 and result.stderr == "" and json.loads(result.stdout)["invalid"] == 1
    result = runner.invoke(app, ["--quiet", "ingest", str(bad)])
    assert result.exit_code == 3 and "bad.jsonl:2:" in result.stderr  # errors still show
    result = runner.invoke(app, ["--verbose", "ask", "--user", "cook1", "dinner?"])
    assert result.exit_code == 0 and "retrieve" in result.stderr and "ms" in result.stderr
    assert result.stdout.startswith("Fake answer")
    assert runner.invoke(app, ["-q", "-v", "stats"]).exit_code == 2


def test_doctor_reports_each_check(built: Path) -> None:
    code, out, _ = run("doctor", "--json")
    checks = {c["check"]: c for c in map(json.loads, out.splitlines())}
    assert code == 0 and all(c["ok"] for c in checks.values()), checks
    assert "fake:256" in checks["embedder loads and embeds"]["detail"]
    assert "175 records" in checks["store opens"]["detail"]
    assert checks["versions"]["detail"]["logo"]


def test_doctor_fails_on_a_broken_model(built: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_text("not a model")
    code, out, _ = run("doctor", "--json", "--model", str(broken))
    failed = [c for c in map(json.loads, out.splitlines()) if not c["ok"]]
    assert code == 8 and failed and "not a GGUF" in failed[0]["detail"]  # a check failed, not a bug


def test_a_home_that_is_a_file_is_a_store_error(
    fake_env: Path, population: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    monkeypatch.setenv("LOGO_HOME", str(afile))
    commands = [["stats"], ["users"], ["ingest", str(population)], ["ask", "-u", "a", "q"]]
    for command in [*commands, ["token", "create", "--admin"]]:
        code, _, err = run(*command)
        assert code == 6 and f"LOGO_HOME {afile} is a file, not a folder." in err and "--home" in err, command
    code, out, _ = run("doctor", "--json")
    failed = [c for c in map(json.loads, out.splitlines()) if not c["ok"]]
    assert code == 8 and [c["check"] for c in failed] == ["LOGO_HOME is a folder logo can write"]
    assert "is a file" in failed[0]["detail"]


@pytest.mark.parametrize(
    ("number", "reason"), [(errno.EROFS, "Read-only file system"), (errno.EACCES, "Permission denied")]
)
def test_a_read_only_home_says_logo_writes_its_lock_there(
    built: Path, monkeypatch: pytest.MonkeyPatch, number: int, reason: str
) -> None:
    """Tests run as root, whom a 0555 folder does not stop: the lock file's open fails as it would for others."""
    import filelock

    def refused(lock: filelock.FileLock, *args: object, **kwargs: object) -> None:
        raise OSError(number, reason, str(lock.lock_file))

    monkeypatch.setattr(filelock.FileLock, "acquire", refused)
    for command in (["stats"], ["users"], ["ask", "-u", "cook1", "dinner?"]):
        code, _, err = run(*command)
        assert code == 6 and f"LOGO_HOME {built} is not writable ({reason})" in err and "writable copy" in err, command
    code, out, _ = run("doctor", "--json")
    failed = [c for c in map(json.loads, out.splitlines()) if not c["ok"]]
    assert code == 8 and [c["check"] for c in failed] == ["LOGO_HOME is a folder logo can write"]


def test_a_lock_file_of_another_user_is_named(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import filelock

    def refused(lock: filelock.FileLock, *args: object, **kwargs: object) -> None:
        Path(lock.lock_file).touch()
        raise PermissionError(errno.EACCES, "Permission denied", str(lock.lock_file))

    monkeypatch.setattr(filelock.FileLock, "acquire", refused)
    monkeypatch.setattr(os, "getuid", lambda: 12345)  # the file is root's, this process someone else
    code, _, err = run("stats")
    assert code == 6 and f"{built / 'store.lock'} belongs to another user" in " ".join(err.split())


def test_one_exit_code_table_for_help_and_readme() -> None:
    from logo_cli.errors import ExitCode, exit_codes_line, exit_codes_table

    assert exit_codes_table() in (ROOT / "README.md").read_text(), "README's table: paste exit_codes_table()"
    code, out, _ = run("--help")
    assert code == 0 and " ".join(exit_codes_line().split()) in " ".join(out.split())
    assert len({int(c) for c in ExitCode}) == len(ExitCode)
