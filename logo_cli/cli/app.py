"""The Typer app, its root options, and the one place where errors become exit codes (httpie's pattern).

Run-wide settings from the root options (--quiet/--verbose, --chroma-url, --llm-url) live in a `CliState`
(state.py) on Typer's context, not in module globals: each command reads it with `CliState.of(ctx)`.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import ExitCode, LogoError, UsageError, exit_codes_line
from .state import CliState

EPILOG = f"Docs: README.md and docs/. {exit_codes_line()}"


class LogoGroup(TyperGroup):
    """Maps LogoError to its exit code and Ctrl-C to 130, with a short message and no traceback."""

    def invoke(self, ctx: Any) -> Any:
        from .output import stderr

        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
            return result
        except BrokenPipeError:
            raise _output_closed() from None
        except LogoError as exc:
            from rich.markup import escape

            console = stderr(CliState.of(ctx), always=True)
            console.print(f"[bold red]Error:[/] {escape(exc.message)}", soft_wrap=True)
            if exc.hint:
                console.print(escape(exc.hint), soft_wrap=True)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            stderr(CliState.of(ctx), always=True).print("Interrupted.")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None


app = typer.Typer(
    cls=LogoGroup,
    name="logo",
    help=(
        "Personalized answers from a local LLM, from each user's own history (local memory) and what everyone "
        "shares (global memory).\n\n"
        "Typical run:\n\n"
        "  logo ingest histories.jsonl        # user histories -> local memory\n\n"
        "  logo build-global                  # cluster everyone -> global memory\n\n"
        '  logo ask --user maya "What should I cook tonight?"'
    ),
    epilog=EPILOG,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        try:  # runs before any command, so outside LogoGroup.invoke's handling of a closed pipe
            typer.echo(f"logo {__version__}")
            sys.stdout.flush()
        except BrokenPipeError:
            raise _output_closed() from None
        raise typer.Exit()


def _output_closed() -> typer.Exit:
    """The reader stopped reading (`| head -1`): end quietly with SIGPIPE's status, stdout gone for good."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return typer.Exit(int(ExitCode.PIPE))


@app.callback()
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Nothing on stderr but errors.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="More on stderr: timings, the memory each answer used.")
    ] = False,
    chroma_url: Annotated[
        str | None,
        typer.Option(
            "--chroma-url",
            envvar="LOGO_CHROMA_URL",
            help="Keep local memory in a Chroma server (http://HOST:PORT) instead of the folder under --home.",
            show_default="on disk",
        ),
    ] = None,
    llm_url: Annotated[
        str | None,
        typer.Option(
            "--llm-url",
            envvar="LOGO_LLM_URL",
            help="Send generation to an OpenAI-compatible server (http://HOST:PORT/v1) instead of the in-process GGUF.",
            show_default="in process",
        ),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            envvar="LOGO_SERVER",
            help="Send ask, ingest, users and profile to a running `logo serve` (http://127.0.0.1:8765), with the "
            "token in LOGO_TOKEN: no start-up per command.",
            show_default="in process",
        ),
    ] = None,
) -> None:
    if quiet and verbose:
        raise UsageError("--quiet and --verbose contradict each other.")
    ctx.obj = CliState(
        verbosity=0 if quiet else 2 if verbose else 1, chroma_url=chroma_url, llm_url=llm_url, server=server
    )
