"""Input records: the schema, validation, and streaming JSONL reading (orjson).

A record is one thing a user did or said: `user` (alias `user_id`) plus `text`, or a LaMP-style
`query` + `response`; optionally `timestamp` (ISO 8601 or epoch seconds), `id`, `item`, `rating`,
`label` and a flat `meta` object. Every problem is reported as `FILE:LINE: reason`.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from .errors import QUESTIONS_HINT, BadRecord, NotFound

Scalar = str | int | float | bool
# Ratings are summed per cluster in float64: one 1e20 took the precision of everyone's after it (a cluster's
# mean read 2.1 for ratings of 5: found by a helper playing attacker).
LARGEST_RATING = 1e6
KNOWN_FIELDS = {"user", "user_id", "text", "query", "response", "timestamp", "id", "item", "rating", "label", "meta"}
MAX_TEXT_CHARS = 20_000  # longer texts are cut: the embedder reads ~256 tokens and prompts must stay small


@dataclass(frozen=True)
class Record:
    user: str
    text: str
    uid: str  # stable store id: from `id`, else a content hash, so re-ingesting adds nothing
    source_id: str | None = None
    timestamp: float | None = None  # epoch seconds, UTC
    item: str | None = None
    rating: float | None = None
    label: str | None = None
    meta: dict[str, Scalar] = field(default_factory=dict)

    def embedding_text(self) -> str:
        """What the embedder reads: the item's title helps clustering when the text does not name it."""
        if self.item and self.item.lower() not in self.text.lower():
            return f"{self.item}: {self.text}"
        return self.text

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"user": self.user, "text": self.text, "id": self.source_id or self.uid}
        if self.timestamp is not None:
            out["timestamp"] = format_time(self.timestamp)
        for key in ("item", "rating", "label"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.meta:
            out["meta"] = self.meta
        return out


@dataclass(frozen=True)
class InvalidLine:
    source: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}"


def format_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat().replace("+00:00", "Z")


EARLIEST_RECORD = 0.0  # 1970-01-01: a record's time (`--at` may ask about any)
FUTURE_SLACK = 366 * 86_400.0  # a record may be dated up to a year ahead of this machine's clock (plans, skew)
MAX_EPOCH = 253_402_300_799.0  # 9999-12-31T23:59:59Z; larger numbers are usually milliseconds
MIN_EPOCH = -62_135_510_400.0  # 0001-01-02: every earlier instant is outside what dates can show in any zone


def _epoch(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    if value > MAX_EPOCH:
        raise ValueError(f"{value:g} is out of range for epoch seconds (milliseconds? divide by 1000)")
    if value < MIN_EPOCH:
        raise ValueError(f"{value:g} is before the year 1")
    return float(value)


def parse_time(value: Any) -> float:
    """ISO 8601 (naive means UTC) or epoch seconds, as a number or a numeric string. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a time")
    if isinstance(value, int | float):
        return _epoch(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            return _epoch(number)
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
        except ValueError:
            raise ValueError(f"{value!r} is neither ISO 8601 nor epoch seconds") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return _epoch(parsed.timestamp())
    raise ValueError(f"expected ISO 8601 text or epoch seconds, got {type(value).__name__}")


def _content_uid(user: str, key: str) -> str:
    return "r" + hashlib.blake2b(f"{user}\x1f{key}".encode(), digest_size=12).hexdigest()


def _string(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and key in {"user", "user_id", "id"}:
        return str(value)  # numeric ids are common in exports (LaMP, MovieLens)
    if not isinstance(value, str):
        raise ValueError(f"field `{key}` must be a string, got {type(value).__name__}")
    return value


def parse_user(obj: dict[str, Any]) -> str:
    """`user`, else `user_id`; numbers become strings. Raises ValueError when missing or empty."""
    user = _string(obj, "user")
    if user is None:
        user = _string(obj, "user_id")
    if user is None or not user.strip():
        raise ValueError("missing or empty `user` (or `user_id`)")
    return user.strip()


def parse_record(obj: Any) -> Record:
    """Validate one decoded JSON value. Raises ValueError with a reason that names the field at fault."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    user = parse_user(obj)

    text = _string(obj, "text")
    if text is None:
        query, response = _string(obj, "query"), _string(obj, "response")
        if query and response and query.strip() and response.strip():
            text = f"Q: {query.strip()}\nA: {response.strip()}"
        elif query is not None or response is not None:
            raise ValueError("`query` needs a non-empty `response` (or give `text`)")
    if text is None or not text.strip():
        raise ValueError("missing or empty `text` (or `query` + `response`)")
    text = text.strip()[:MAX_TEXT_CHARS]

    timestamp = None
    if obj.get("timestamp") is not None:
        try:
            timestamp = parse_time(obj["timestamp"])
        except ValueError as exc:
            raise ValueError(f"field `timestamp`: {exc}") from None
        # Global memory releases one noisy cell per period from the oldest record to the newest: one record
        # dated in the year 1 (or 9999) would make thousands of periods, each adding noise to every figure.
        if timestamp < EARLIEST_RECORD:
            raise ValueError(f"field `timestamp`: {format_time(timestamp)} is before 1970, where logo's time begins")
        if timestamp > time.time() + FUTURE_SLACK:
            raise ValueError(f"field `timestamp`: {format_time(timestamp)} is more than a year in the future")

    rating = obj.get("rating")
    if rating is not None:
        if isinstance(rating, bool) or not isinstance(rating, int | float) or not math.isfinite(rating):
            raise ValueError(f"field `rating` must be a finite number, got {rating!r}")
        if abs(rating) > LARGEST_RATING:
            raise ValueError(f"field `rating` must be within ±{LARGEST_RATING:,.0f} (any scale fits), got {rating!r}")
        rating = float(rating)

    meta = obj.get("meta")
    meta = {} if meta is None else meta
    if not isinstance(meta, dict):
        raise ValueError("field `meta` must be an object")
    for key, value in meta.items():
        if not isinstance(value, str | int | float | bool) or (isinstance(value, float) and not math.isfinite(value)):
            raise ValueError(f"field `meta.{key}` must be a string, number or boolean (meta is flat)")

    source_id = _string(obj, "id")
    ts_key = "" if timestamp is None else repr(timestamp)
    uid = _content_uid(user, f"id\x1f{source_id}" if source_id else f"{text}\x1f{ts_key}")
    return Record(
        user=user,
        text=text,
        uid=uid,
        source_id=source_id,
        timestamp=timestamp,
        item=_string(obj, "item") or None,
        rating=rating,
        label=_string(obj, "label") or None,
        meta=meta,
    )


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # a UTF-8 BOM from Windows tools
        yield number, raw


Source = str | tuple[str, BinaryIO]  # a path (`-`: stdin), or a name and an open stream (a server's request)


def read_records(paths: Iterable[Source], *, skip_invalid: bool = False) -> Iterator[Record | InvalidLine]:
    """Stream records from JSONL files (`-` is stdin) or (name, stream) pairs. Blank lines are skipped.

    A bad line raises BadRecord, or with `skip_invalid` is yielded as an InvalidLine for the caller to report.
    Every file is looked for before the first record is read: a mistyped second name stops nothing half-way.
    """
    paths = list(paths)
    for path in paths:
        if isinstance(path, str) and path != "-":
            _check_file(path)
    for path in paths:
        if isinstance(path, tuple):
            yield from _read_stream(path[1], path[0], skip_invalid)
            continue
        source = "<stdin>" if path == "-" else path
        if path == "-":
            yield from _read_stream(sys.stdin.buffer, source, skip_invalid)
            continue
        try:
            stream = _check_file(path).open("rb")
        except FileNotFoundError:  # gone since it was looked for
            raise NotFound(f"{path}: no such file.", "Check the path, or use - to read from stdin.") from None
        with stream:
            yield from _read_stream(stream, source, skip_invalid)


def _check_file(path: str) -> Path:
    file = Path(path)
    if file.is_dir():
        raise NotFound(f"{path}: is a directory, not a JSONL file.", "Pass the .jsonl files inside it.")
    if not file.exists():
        raise NotFound(f"{path}: no such file.", "Check the path, or use - to read from stdin.")
    return file


def _read_stream(stream: BinaryIO, source: str, skip_invalid: bool) -> Iterator[Record | InvalidLine]:
    for number, raw in _lines(stream):
        if not raw.strip():
            continue
        try:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"not UTF-8 (byte {exc.start})") from None
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise ValueError(json_reason(exc)) from None
            yield parse_record(obj)
        except ValueError as exc:
            if not skip_invalid:
                raise BadRecord(source, number, str(exc)) from None
            yield InvalidLine(source, number, str(exc))


def read_jsonl_objects(path: str) -> Iterator[tuple[int, Any]]:
    """Decode a JSONL file of arbitrary objects (questions, eval sets); bad lines raise BadRecord."""
    if path == "-":
        yield from _objects(sys.stdin.buffer, "<stdin>")
        return
    try:
        stream = Path(path).open("rb")  # noqa: SIM115 - closed by the with below, inside the generator
    except (FileNotFoundError, IsADirectoryError):
        raise NotFound(f"{path}: no such file.") from None
    with stream:
        yield from _objects(stream, path)


def _objects(stream: BinaryIO, source: str) -> Iterator[tuple[int, Any]]:
    for number, raw in _lines(stream):
        if not raw.strip():
            continue
        try:
            yield number, orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadRecord(source, number, json_reason(exc), QUESTIONS_HINT) from None


def json_reason(exc: orjson.JSONDecodeError) -> str:
    """The decoder's reason at a column of the line (its own `line 2 column 1` counts the line's newline)."""
    return f"invalid JSON at column {exc.pos + 1}: {exc.msg}"
