"""The command line: parse, call one library function, render. stdout carries data only (JSON lines, or the
answer text); everything for people goes to stderr.

`app` (and the one place errors become exit codes) is in `app.py`, options several commands share in
`options.py`, every renderer in `output.py`, and each command group in its own module, a thin wrapper over
one library function (weasel's pattern).

The command modules do not use `from __future__ import annotations`: typer reads every command's annotations
on each run (even for `--help`), and evaluating them from strings cost about 40 ms of a 0.13 s `--help`.
"""

from __future__ import annotations

from . import ask, build, convert, evaluation, ingest, inspecting, memory, privacy, serve, tokens  # noqa: F401  (they register)
from .app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
