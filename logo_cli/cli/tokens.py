"""`logo token create|list|revoke`: who may use `logo serve`."""

from typing import Annotated

import typer

from .app import app
from .options import HomeOpt
from .output import emit, stderr
from .state import CliState

token_app = typer.Typer(
    help="Bearer tokens for `logo serve`: a user's reads and writes only that user's memory; the admin's (an "
    "application backend's) anyone's. Kept hashed in the home; shown once.",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")


@token_app.command(
    "create",
    epilog="Example: logo token create --user maya\n\n"
    "Example: export LOGO_TOKEN=$(logo token create --admin | jq -r .token)",
)
def token_create_cli(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", "-u", help="The one user this token acts for.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="A token for any user and for /users.")] = False,
    note: Annotated[str, typer.Option("--note", help="What it is for (shown by `logo token list`).")] = "",
    home: HomeOpt = None,
) -> None:
    """Make a token and print it once, as JSON: {"token", "id", "user", "admin", ...}. The home keeps only its
    hash; a running server accepts it at once. Send it as `Authorization: Bearer TOKEN`, or as LOGO_TOKEN
    to `logo --server`."""
    from .. import tokens
    from .options import settings_for

    made = tokens.create(settings_for(CliState.of(ctx), home).home, user=user, admin=admin, note=note)
    emit({"token": made.token, **made.grant.public()})
    stderr(CliState.of(ctx)).print("Shown once: keep it now (the home keeps only its hash).")


@token_app.command("list", epilog="Example: logo token list")
def token_list_cli(ctx: typer.Context, home: HomeOpt = None) -> None:
    """One JSON line per token: id, user, admin, created, note (never the token)."""
    from .. import tokens
    from .options import settings_for

    for grant in tokens.listed(settings_for(CliState.of(ctx), home).home):
        emit(grant.public())


@token_app.command("revoke", epilog="Example: logo token revoke 3f2a9c1b7d4e")
def token_revoke_cli(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="The token's id (from `logo token list`), or the token.")],
    home: HomeOpt = None,
) -> None:
    """Delete a token; a running server refuses it from its next request."""
    from .. import tokens
    from .options import settings_for

    emit({"revoked": tokens.revoke(settings_for(CliState.of(ctx), home).home, token_id).public()})
