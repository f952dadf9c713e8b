"""One set of rules: every default and range of a question's options is written once (`rules.py`), and `ask`'s
flags, a line of `ask -` or `eval`, and a server request accept and refuse the same values, with the same words."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer

from logo_cli import rules
from logo_cli.ask import GenerationOptions
from logo_cli.cli import app
from logo_cli.errors import BadRecord, UsageError
from logo_cli.mediator import MediatorOptions
from logo_cli.request import AskOptions, read_line

from .helpers import run

FLAGS = {  # request name -> the flag `ask` names it by
    "memory": "memory",
    "local": "local_mode",
    "local_k": "local_k",
    "global_k": "global_k",
    "cold_start_max": "cold_start_max",
    "biased_min_history": "biased_min_history",
    "biased_max_diversity": "biased_max_diversity",
    "max_tokens": "max_tokens",
    "temperature": "temperature",
    "seed": "seed",
}


def command(name: str) -> Any:
    """The command as typer builds it (typer carries its own copy of click)."""
    return typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]


def test_every_default_is_the_rules_default() -> None:
    options = AskOptions()
    for name, rule in rules.ASK_OPTIONS.items():
        assert getattr(options, name) == rule.default, name
    assert options.mediator() == MediatorOptions()
    assert options.generation() == GenerationOptions()
    assert rules.BIASED_MAX_DIVERSITY.default == 0.7


@pytest.mark.parametrize("name", ["ask", "eval", "profile"])
def test_the_flags_defaults_and_ranges_are_the_rules(name: str) -> None:
    params = {p.name: p for p in command(name).params}
    checked = 0
    for field, flag in FLAGS.items():
        if flag not in params or (name, flag) == ("eval", "seed"):  # eval's --seed samples questions
            continue
        rule, param = rules.ASK_OPTIONS[field], params[flag]
        assert param.default == rule.default, (name, flag)
        assert (param.min, param.max) == (rule.ge, rule.le), (name, flag)
        checked += 1
    assert checked >= 3


BAD = [
    ({"local_k": -1}, "`local_k` must be an integer from 0 to 50, not -1"),
    ({"global_k": 21}, "`global_k` must be an integer from 0 to 20, not 21"),
    ({"max_tokens": 0}, "`max_tokens` must be an integer from 1 to 4096, not 0"),
    ({"temperature": -1}, "`temperature` must be a number from 0 to 2, not -1"),
    ({"biased_max_diversity": 7}, "`biased_max_diversity` must be a number from 0 to 1, not 7"),
    ({"biased_min_history": 0}, "`biased_min_history` must be an integer from 1 to 1000000000, not 0"),
    ({"memory": "all"}, "`memory` must be one of logo, local, global, none, not 'all'"),
    ({"count": 51}, "`count` must be an integer from 1 to 50, not 51"),
    ({"seed": "1"}, "`seed` must be an integer from 0 to 2147483647, not '1'"),
]


@pytest.fixture
def built(fake_env: Path, population: Path) -> Path:
    assert run("ingest", str(population))[0] == 0
    assert run("build-global", "--clusters", "3")[0] == 0
    return fake_env


@pytest.mark.parametrize(("extra", "message"), BAD)
def test_a_line_a_request_and_an_eval_line_refuse_alike(built: Path, extra: dict[str, Any], message: str) -> None:
    from logo_cli.config import Settings
    from logo_cli.questions import read_questions
    from logo_cli.server.service import ADMIN, Service

    line = {"user": "film0", "query": "Recommend 2 films", **extra}
    code, _, err = run("ask", "-", input=json.dumps(line) + "\n")  # `ask -`: the line's own option
    assert code == 3 and f"<stdin>:1: {message}" in " ".join(err.split()), err
    with pytest.raises(UsageError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        Service(Settings()).read_question(line, ADMIN)  # the server's `POST /ask`
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        read_line({**line, "gold": 3}, gold=True)  # a `logo eval` line
    path = built / "q.jsonl"
    path.write_text(json.dumps({**line, "gold": 3}) + "\n")
    with pytest.raises(BadRecord, match=message.replace("(", r"\(").replace(")", r"\)")):
        list(read_questions(str(path), gold=True))


@pytest.mark.parametrize(
    ("flags", "code"),
    [
        (["--local-k", "-1"], 2),
        (["--global-k", "21"], 2),
        (["--max-tokens", "0"], 2),
        (["--temperature", "-1"], 2),
        (["--biased-max-diversity", "7"], 2),
        (["--count", "51"], 2),
        (["--memory", "all"], 2),
        (["--local", "vector"], 2),
    ],
)
def test_the_flags_refuse_the_same_values(built: Path, flags: list[str], code: int) -> None:
    got, _, err = run("ask", "-u", "film0", *flags, "Recommend 2 films")
    assert got == code, err


def test_a_line_option_wins_over_the_flag_in_process(built: Path) -> None:
    """`ask -`'s flags are every line's defaults, as a server batch's `defaults` are."""
    lines = [{"user": "film0", "query": "Tell me about it", "answer_type": "open"}, {"user": "film0",
             "query": "Tell me about it", "answer_type": "open", "max_tokens": 2}]
    code, out, err = run("ask", "--max-tokens", "5", "-", input="".join(json.dumps(x) + "\n" for x in lines))
    assert code == 0, err
    first, second = (json.loads(x) for x in out.splitlines())
    assert first["tokens"]["completion"] == 5 and second["tokens"]["completion"] == 2
