"""The commands through Typer's CliRunner, with the fake embedder and model and a real Chroma store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from logo_cli.errors import ExitCode

from .helpers import make_records, run


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def built(fake_env: Path, population: Path) -> Path:
    code, _, err = run("ingest", str(population))
    assert code == 0, err
    code, _, err = run("build-global", "--seed", "0")
    assert code == 0, err
    return fake_env


def test_ingest_summary_and_idempotence(fake_env: Path, population: Path) -> None:
    code, out, _ = run("ingest", str(population))
    assert code == 0
    first = jsonl(out)
    assert first == [{"read": 175, "added": 175, "duplicates": 0, "invalid": 0, "users": 14, "embedder": "fake:256"}]
    code, out, _ = run("ingest", str(population))
    assert code == 0 and jsonl(out)[0]["added"] == 0 and jsonl(out)[0]["duplicates"] == 175


def test_ingest_from_stdin(fake_env: Path) -> None:
    rows = make_records({"s": ("travel", 3)})
    code, out, _ = run("ingest", "-", input="".join(json.dumps(r) + "\n" for r in rows))
    assert code == 0 and jsonl(out)[0]["added"] == 3


def test_bad_line_stops_with_exit_3_and_keeps_earlier_records(fake_env: Path, tmp_path: Path) -> None:
    rows = make_records({"a": ("films", 5)})
    lines = [json.dumps(r) for r in rows]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([*lines[:3], '{"user": "a", "rating": 3}', *lines[3:]]) + "\n")
    code, out, err = run("ingest", str(bad))
    assert code == ExitCode.BAD_DATA == 3
    assert f"{bad}:4:" in err and "`text`" in err
    assert jsonl(out)[0]["added"] == 3
    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text("\n".join(lines) + "\n")
    code, out, _ = run("ingest", str(fixed))
    assert code == 0 and jsonl(out)[0]["added"] == 2 and jsonl(out)[0]["duplicates"] == 3


def test_skip_invalid_reports_and_continues(fake_env: Path, tmp_path: Path) -> None:
    f = tmp_path / "mixed.jsonl"
    f.write_text('{"user": "a", "text": "fine"}\nnot json\n{"user": "a", "text": "also fine"}\n')
    code, out, err = run("ingest", "--skip-invalid", str(f))
    assert code == 0
    summary = jsonl(out)[0]
    assert (summary["read"], summary["added"], summary["invalid"]) == (2, 2, 1)
    assert f"{f}:2: invalid JSON" in err


def test_an_empty_input_says_nothing_was_ingested(fake_env: Path, tmp_path: Path) -> None:
    code, out, err = run("ingest", "-", input="")
    assert code == 0 and jsonl(out)[0]["read"] == 0 and "nothing was ingested" in err


def test_missing_file_is_not_found(fake_env: Path, tmp_path: Path) -> None:
    code, _, err = run("ingest", str(tmp_path / "nope.jsonl"))
    assert code == ExitCode.NOT_FOUND and "no such file" in err


def test_build_global_is_deterministic(built: Path) -> None:
    code, out, _ = run("build-global", "--seed", "0")
    first = jsonl(out)[0]
    assert code == 0
    _, out, _ = run("build-global", "--seed", "0")
    second = jsonl(out)[0]
    assert first["clusters"] == second["clusters"] and first["communities"] == second["communities"]
    from logo_cli import global_memory

    a = global_memory.load(built / "global")
    assert a.version == second["version"]
    assert len(a.users) == 14 and all(p.distribution for p in a.users.values())  # every user profiled
    run("build-global", "--seed", "0")
    b = global_memory.load(built / "global")
    assert [c.keywords for c in a.clusters] == [c.keywords for c in b.clusters]
    assert {u: p.distribution for u, p in a.users.items()} == {u: p.distribution for u, p in b.users.items()}


def test_build_global_forced_clusters(built: Path) -> None:
    code, out, _ = run("build-global", "--clusters", "3", "--communities", "2")
    summary = jsonl(out)[0]
    assert code == 0 and summary["clusters"] == 3 and summary["communities"] == 2


def test_ask_json_has_everything(built: Path) -> None:
    code, out, err = run("ask", "--user", "cook1", "--json", "Cooked risotto with basil, what next?")
    assert code == 0, err
    result = json.loads(out)
    assert result["answer"].startswith("Fake answer")
    for key in ("weights", "flags", "signals", "local", "global", "models", "tokens", "timings_ms", "community"):
        assert key in result
    assert result["models"] == {"llm": "fake", "embedder": "fake:256", "embedder_runtime": "fake"}
    assert result["local"] and all(item["id"].startswith("cook1-") for item in result["local"])
    assert set(result["timings_ms"]) >= {"embed", "retrieve", "mediate", "generate", "total"}
    assert result["tokens"]["prompt"] > 0


def test_cold_start_and_unknown_users_get_global_memory(built: Path) -> None:
    for user in ("newbie", "somebody-new"):
        code, out, _ = run("ask", "--user", user, "--json", "What should I cook for dinner?")
        result = json.loads(out)
        assert code == 0 and result["flags"]["cold_start"] is True
        assert result["global"], "a cold-start user's context must hold global clusters"
        assert result["weights"]["global"] > result["weights"]["local"]
    assert json.loads(out)["local"] == []


def test_biased_user_is_flagged(built: Path) -> None:
    run("build-global", "--clusters", "3")  # one cluster per topic of the made-up population
    _code, out, _ = run("ask", "--user", "narrow", "--json", "Any advice for a train trip and a small hotel?")
    result = json.loads(out)
    assert result["flags"]["biased"] is True
    assert result["signals"]["diversity"] < 0.35


def test_ask_never_shows_other_users_records(built: Path, population: Path) -> None:
    users = sorted({json.loads(line)["user"] for line in population.read_text().splitlines()})
    questions = "".join(
        json.dumps({"user": u, "query": q, "id": f"{u}-{i}"}) + "\n"
        for u in users
        for i, q in enumerate(["films tonight?", "dinner recipe with garlic", "a week by the beach"])
    )
    code, out, err = run("ask", "-", "--memory", "local", input=questions)
    assert code == 0, err
    results = jsonl(out)
    assert len(results) == 3 * len(users)
    for result in results:
        assert all(item["id"].startswith(result["user"] + "-") for item in result["local"])


def test_no_global_memory_exit_4_unless_local(fake_env: Path, population: Path) -> None:
    run("ingest", str(population))
    code, _, err = run("ask", "--user", "cook1", "dinner?")
    assert code == ExitCode.NOT_FOUND == 4 and "logo build-global" in err
    code, out, _ = run("ask", "--user", "cook1", "--memory", "local", "dinner?")
    assert code == 0 and out.startswith("Fake answer")
    code, out, _ = run("ask", "--user", "cook1", "--memory", "none", "--json", "dinner?")
    assert code == 0 and json.loads(out)["local"] == [] and json.loads(out)["global"] == []
    # items asked for by name (-t recommend) need global memory whatever the mode: not model text about nothing
    code, out, err = run("ask", "--user", "cook1", "--memory", "local", "-t", "recommend", "dinner?")
    assert code == ExitCode.NOT_FOUND and out == "" and "logo build-global" in err


def test_explain_shows_the_memory_used_on_stderr_with_or_without_json(built: Path) -> None:
    code, out, err = run("ask", "--user", "cook1", "--explain", "dinner recipe with garlic?")
    assert code == 0 and out.strip() and "memory logo: local" in err and "  local " in err
    code, out, err = run("ask", "--user", "cook1", "--json", "--explain", "dinner recipe with garlic?")
    assert code == 0 and json.loads(out)["user"] == "cook1"  # stdout stays one JSON object
    assert "memory logo: local" in err


def test_usage_errors(built: Path) -> None:
    assert run("ask", "--user", "a", "--memory", "all", "q")[0] == ExitCode.USAGE
    code, _, err = run("ask", "--user", "a", "--at", "last tuesday", "q")
    assert code == ExitCode.USAGE and "--at" in err
    code, _, err = run("ask", "q")
    assert code == ExitCode.USAGE and "--user" in err


def test_at_excludes_later_records(built: Path) -> None:
    code, out, _ = run(
        "ask", "--user", "narrow", "--json", "--memory", "local", "--at", "2025-01-01T00:00:00Z", "films?"
    )
    assert code == 0
    assert json.loads(out)["signals"]["history_size"] == 0
    _code, out, _ = run(
        "ask", "--user", "narrow", "--json", "--memory", "local", "--at", "2025-02-20T00:00:00Z", "films?"
    )
    result = json.loads(out)
    assert 0 < result["signals"]["history_size"] < 30
    assert all(item["timestamp"] < "2025-02-20" for item in result["local"])


def test_bad_model_path_fails_before_work(built: Path, tmp_path: Path) -> None:
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_text("hello")
    code, _, err = run("ask", "--user", "a", "--model", str(not_gguf), "q")
    assert code == ExitCode.MODEL and "not a GGUF" in err


def test_help_teaches_with_examples() -> None:
    code, out, _ = run("--help")
    assert code == 0 and "logo ingest" in out
    for command in ("ingest", "build-global", "ask"):
        code, out, _ = run(command, "--help")
        assert code == 0 and "Example" in out, command


def test_help_does_not_import_heavy_modules() -> None:
    probe = (
        "import sys\n"
        "from logo_cli.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "names = ('torch', 'chromadb', 'llama_cpp', 'sentence_transformers', 'sklearn')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "HEAVY []" in done.stderr


def test_python_dash_m_works() -> None:
    done = subprocess.run([sys.executable, "-m", "logo_cli", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("logo ")


def test_batch_user_zero_is_a_user_not_a_default(built: Path) -> None:
    code, out, _ = run("ask", "-", "--user", "cook1", "--json", input='{"user": 0, "query": "dinner?"}\n')
    assert code == 0 and jsonl(out)[0]["user"] == "0" and jsonl(out)[0]["local"] == []


def test_batch_bad_line_exit_3(built: Path) -> None:
    code, out, err = run("ask", "-", input='{"user": "cook1", "query": "dinner?"}\n{"user": "cook1"}\n')
    assert code == ExitCode.BAD_DATA and "<stdin>:2:" in err and "`query`" in err
    assert len(jsonl(out)) == 1  # the first question was answered before the bad line
    assert "--skip-invalid" not in err  # ingest's hint: ask has no such option
    assert "tail -n +2 FILE | logo ask -" in " ".join(err.split())  # how to go on, not answer line 1 again


def test_batch_invalid_json_names_the_column_of_its_line(built: Path) -> None:
    code, _, err = run("ask", "-", input='{"user": "cook1", "query": "dinner?"}\n{bad\n')
    assert code == ExitCode.BAD_DATA and "<stdin>:2: invalid JSON at column 2:" in err
    assert "line 2 column" not in err  # the decoder's own count would disagree with the file's
    assert "tail -n +2" in err


def test_ask_without_question_and_empty_stdin_is_usage_error(built: Path) -> None:
    code, _, err = run("ask", "--user", "cook1", input="")
    assert code == ExitCode.USAGE and "nothing on stdin" in err


def test_a_missing_second_file_stops_the_run_before_it_starts(fake_env: Path, population: Path, tmp_path: Path) -> None:
    code, out, err = run("ingest", str(population), str(tmp_path / "missing.jsonl"))
    assert code == ExitCode.NOT_FOUND and "missing.jsonl: no such file" in err
    assert jsonl(out)[0]["read"] == 0  # looked for first: nothing of the first file was embedded for nothing
    code, out, _ = run("ingest", str(population))
    assert jsonl(out)[0]["added"] == 175


def test_zero_k_means_no_memory_of_that_kind(built: Path) -> None:
    code, out, _ = run("ask", "--user", "cook1", "--json", "--global-k", "0", "--local-k", "0", "dinner recipe?")
    result = json.loads(out)
    assert code == 0 and result["global"] == [] and result["local"] == []


def test_min_users_hides_small_clusters_items_and_ratings(built: Path) -> None:
    from logo_cli import global_memory

    code, _, _ = run("build-global", "--clusters", "3", "--min-users", "5")
    assert code == 0
    memory = global_memory.load(built / "global")
    small = [c for c in memory.clusters if c.users < 5]
    assert small, "the travel cluster (4 users) should be private at --min-users 5"
    assert all(c.private for c in small) and not any(c.private for c in memory.clusters if c.users >= 5)
    assert all(n >= 5 for c in memory.clusters for _, n in c.top_items)
    code, out, _ = run("ask", "--user", "cook1", "--json", "--memory", "global", "--global-k", "3", "trip hotel beach")
    result = json.loads(out)
    assert result["global"] and all(g["users"] >= 5 for g in result["global"])
    shown = " ".join(" ".join(g["keywords"] + g["top_items"]) for g in result["global"])
    assert "beach" not in shown and "Lisbon" not in shown


def test_tiny_store_without_timestamps(fake_env: Path, tmp_path: Path) -> None:
    f = tmp_path / "one.jsonl"
    f.write_text('{"user": "solo", "text": "I like long walks by the river"}\n')
    assert run("ingest", str(f))[0] == 0
    code, out, err = run("build-global")
    assert code == 0, err
    assert jsonl(out)[0]["clusters"] == 1
    code, out, err = run("ask", "--user", "solo", "--json", "walks?")
    assert code == 0, err
    assert json.loads(out)["local"][0]["timestamp"] is None


def test_a_reader_that_closes_the_output_early_ends_logo_with_sigpipes_status(
    fake_env: Path, population: Path
) -> None:
    """`logo users | head -1`: the reader is gone before logo writes. logo ends quietly with 141, as a tool SIGPIPE
    stops, not with 1, which says "a bug" (click's own handling of a closed pipe)."""
    import os

    assert run("ingest", str(population))[0] == 0
    read, write = os.pipe()
    os.close(read)  # every write now fails with EPIPE
    try:
        done = subprocess.run(
            [sys.executable, "-m", "logo_cli", "users", "--json"], stdout=write, stderr=subprocess.PIPE, text=True
        )
    finally:
        os.close(write)
    assert done.returncode == ExitCode.PIPE == 141, done.stderr
    assert "Traceback" not in done.stderr and "Error" not in done.stderr
    read, write = os.pipe()
    os.close(read)
    try:  # --version prints before any command runs
        done = subprocess.run([sys.executable, "-m", "logo_cli", "--version"], stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)
    assert done.returncode == 141, done.stderr
