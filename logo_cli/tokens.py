"""Bearer tokens for `logo serve`: who may read and write whose memory.

- A token is `logo_<id>_<secret>`: a public id (to list and revoke it by) and 32 random bytes from `secrets`.
  It is shown once, when it is made; the home keeps only its SHA-256 (a fast hash is the right one for a
  random 256-bit secret: there is nothing to guess), in `$LOGO_HOME/tokens.json`, mode 0600, written
  atomically (a temporary file, fsync, rename) under a lock, so two `logo token` commands never lose one.
- A **user** token acts only as its user: requests for anyone else are refused. An **admin** token is the
  application backend's: any user, and the routes about everybody (`/users`).
- Checking a token compares digests in constant time (`hmac.compare_digest`), also when the id is unknown.
- `logo serve` reads the file again when it changes, so a revoked token stops working at its next request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .durable import write_atomic
from .errors import NotFound, StoreError, UsageError

FILE = "tokens.json"
PREFIX = "logo_"
VERSION = 1
_DUMMY = hashlib.sha256(b"no such token").hexdigest()


@dataclass(frozen=True)
class Grant:
    """What a token may do: act as `user`, or as anyone (`admin`)."""

    id: str
    user: str | None
    admin: bool
    created: float
    note: str = ""

    def may_act_for(self, user: str) -> bool:
        return self.admin or self.user == user

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "admin": self.admin,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created)),
            "note": self.note,
        }


@dataclass(frozen=True)
class NewToken:
    grant: Grant
    token: str  # the only time it exists outside the caller's hands


def path_of(home: Path) -> Path:
    return home / FILE


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _id_of(token: str) -> str | None:
    if not token.startswith(PREFIX):
        return None
    ident, sep, secret = token[len(PREFIX) :].partition("_")
    return ident if sep and ident and secret else None


# ------------------------------------------------------------------------------------------------ the file


def _read(path: Path) -> list[dict[str, Any]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the tokens: {exc.strerror or exc}.") from None
    try:
        data = json.loads(raw)
        rows = data["tokens"]
        if not isinstance(rows, list) or not all(isinstance(r, dict) and "id" in r and "sha256" in r for r in rows):
            raise ValueError("not a list of tokens")
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(
            f"{path}: not a logo tokens file ({exc}).", "Move it away and create the tokens again."
        ) from None
    if data.get("version", VERSION) > VERSION:
        raise StoreError(f"{path}: written by a newer logo.", "Upgrade logo.")
    return rows


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    """Atomically, mode 0600: a reader sees the old file or the new one, and only this user can read either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({"version": VERSION, "tokens": rows}, indent=1).encode() + b"\n", mode=0o600)


@contextmanager
def _editing(home: Path) -> Iterator[list[dict[str, Any]]]:
    """The rows, under an exclusive lock; written back when the block ends without an error."""
    import fcntl

    from .local_memory.locking import home_error, make_home

    make_home(home)
    try:
        lock = open(home / f"{FILE}.lock", "a")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise home_error(home, exc) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = _read(path_of(home))
        yield rows
        _write(path_of(home), rows)


# ------------------------------------------------------------------------------------------------ commands


def create(home: Path, *, user: str | None = None, admin: bool = False, note: str = "") -> NewToken:
    """A new token for `user`, or an admin token. Raises UsageError unless exactly one is asked for."""
    if admin == (user is not None):
        raise UsageError("A token is for one user (--user U) or the admin's (--admin): give one of them.")
    if user is not None and not user.strip():
        raise UsageError("--user is empty.")
    grant = Grant(
        id=secrets.token_hex(6),
        user=user.strip() if user is not None else None,
        admin=admin,
        created=time.time(),
        note=note,
    )
    token = f"{PREFIX}{grant.id}_{secrets.token_urlsafe(32)}"
    with _editing(home) as rows:
        rows.append({**asdict(grant), "sha256": digest(token)})
    return NewToken(grant, token)


def listed(home: Path) -> list[Grant]:
    return [_grant(row) for row in _read(path_of(home))]


def revoke(home: Path, ident: str) -> Grant:
    """Remove a token by its id (or by the token itself). Raises NotFound."""
    ident = _id_of(ident) or ident
    with _editing(home) as rows:
        for index, row in enumerate(rows):
            if row["id"] == ident:
                del rows[index]
                return _grant(row)
    raise NotFound(f"No token with id {ident!r}.", "`logo token list` shows the ids.")


def _grant(row: dict[str, Any]) -> Grant:
    return Grant(
        id=str(row["id"]),
        user=row.get("user"),
        admin=bool(row.get("admin")),
        created=float(row.get("created") or 0.0),
        note=str(row.get("note") or ""),
    )


# ------------------------------------------------------------------------------------------------ checking


class Keyring:
    """The tokens a server accepts, read again whenever the file changes (a revoke takes effect at once)."""

    def __init__(self, home: Path) -> None:
        self.path = path_of(home)
        self._seen: tuple[int, int, int] | None = None
        self._by_id: dict[str, tuple[str, Grant]] = {}

    def _fresh(self) -> None:
        try:
            st = self.path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = (0, 0, 0)
        if stamp != self._seen:
            self._by_id = {str(row["id"]): (str(row["sha256"]), _grant(row)) for row in _read(self.path)}
            self._seen = stamp

    def __len__(self) -> int:
        self._fresh()
        return len(self._by_id)

    def check(self, token: str) -> Grant | None:
        """The grant of a valid token, None otherwise; as long for an unknown id as for a wrong secret."""
        self._fresh()
        ident = _id_of(token)
        stored, grant = self._by_id.get(ident or "", (_DUMMY, None))
        same = hmac.compare_digest(stored, digest(token))
        return grant if same and grant is not None else None
