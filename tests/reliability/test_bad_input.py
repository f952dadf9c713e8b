"""Reliability: bad input to `logo ingest` and the record reader (issue 5, "Bad input").

Every malformed line must stop the run with exit 3 and `FILE:LINE: reason` on stderr (naming the field at
fault where there is one), keep the records before it and store nothing after it. Missing files and
directories exit 4. BOM, CRLF and blank lines are accepted. A property-based test feeds the reader random
lines: it never raises, and every non-blank line is either a Record or an InvalidLine.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logo_cli.embed import load_embedder
from logo_cli.errors import ExitCode
from logo_cli.local_memory.store import Store
from logo_cli.records import KNOWN_FIELDS, MAX_TEXT_CHARS, InvalidLine, Record, parse_record, read_records

from ..helpers import run

# ------------------------------------------------------------------------------------------------ helpers


def summary_of(out: str) -> dict[str, Any]:
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    return lines[0]


def stored_ids(home: Path) -> set[str]:
    """The uids in the store under LOGO_HOME (empty when nothing was ever written)."""
    store = Store(home / "store")
    if not store.exists():
        return set()
    embedder = load_embedder("fake")
    store.open(embedder.id, embedder.dim, create=False)
    return set(store.collection.get(include=[])["ids"])


def stored_documents(home: Path) -> dict[str, str]:
    embedder = load_embedder("fake")
    store = Store(home / "store").open(embedder.id, embedder.dim, create=False)
    return {r.uid: r.text for page in store.pages() for r in page.records}


def rec(i: int, user: str = "alice", **extra: Any) -> dict[str, Any]:
    return {"user": user, "id": f"{user}-{i}", "text": f"Cooked risotto number {i} with basil", **extra}


def line(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def uids(objs: list[dict[str, Any]]) -> set[str]:
    return {parse_record(o).uid for o in objs}


BEFORE = [rec(1), rec(2)]
AFTER = [rec(3), rec(4)]

# (case id, the bad line's bytes, fragments the stderr message must contain besides FILE:LINE:)
BAD_LINES: list[tuple[str, bytes, tuple[str, ...]]] = [
    ("invalid_json", b'{"user": "alice", "text": "unterminated', ("invalid JSON",)),
    ("trailing_garbage", b'{"user": "alice", "text": "x"} and more', ("invalid JSON",)),
    ("not_json_at_all", b"user=alice text=hello", ("invalid JSON",)),
    ("json_list", b'[{"user": "alice", "text": "x"}]', ("expected a JSON object", "list")),
    ("json_string", b'"alice likes risotto"', ("expected a JSON object", "str")),
    ("json_number", b"42", ("expected a JSON object", "int")),
    ("json_null", b"null", ("expected a JSON object",)),
    ("missing_user", line({"text": "no author"}), ("`user`",)),
    ("empty_user", line({"user": "", "text": "x"}), ("`user`",)),
    ("blank_user", line({"user": "   ", "text": "x"}), ("`user`",)),
    ("user_as_list", line({"user": ["alice"], "text": "x"}), ("`user`",)),
    ("missing_text", line({"user": "alice"}), ("`text`",)),
    ("empty_text", line({"user": "alice", "text": ""}), ("`text`",)),
    ("blank_text", line({"user": "alice", "text": " \t "}), ("`text`",)),
    ("text_as_number", line({"user": "alice", "text": 12}), ("`text`",)),
    ("query_without_response", line({"user": "alice", "query": "why?"}), ("`response`",)),
    ("rating_as_text", line({"user": "alice", "text": "x", "rating": "5"}), ("`rating`",)),
    ("rating_true", line({"user": "alice", "text": "x", "rating": True}), ("`rating`",)),
    ("timestamp_unparsable", line({"user": "alice", "text": "x", "timestamp": "last tuesday"}), ("`timestamp`",)),
    (
        "timestamp_milliseconds",
        line({"user": "alice", "text": "x", "timestamp": 1_735_689_600_000}),
        ("`timestamp`", "milliseconds"),
    ),
    ("timestamp_bool", line({"user": "alice", "text": "x", "timestamp": True}), ("`timestamp`",)),
    ("non_utf8", b'{"user": "alice", "text": "caf\xe9 au lait"}', ("not UTF-8",)),
    # NaN / Infinity are not JSON (RFC 8259): orjson rejects them, so the message says "invalid JSON" with a
    # column rather than naming `rating`.
    ("rating_nan", b'{"user": "alice", "text": "x", "rating": NaN}', ("invalid JSON",)),
    ("rating_infinity", b'{"user": "alice", "text": "x", "rating": Infinity}', ("invalid JSON",)),
    ("rating_minus_infinity", b'{"user": "alice", "text": "x", "rating": -Infinity}', ("invalid JSON",)),
    ("rating_overflows_to_inf", b'{"user": "alice", "text": "x", "rating": 1e400}', ("invalid JSON",)),
    ("nested_meta", line({"user": "alice", "text": "x", "meta": {"x": {"y": {"z": 1}}}}), ("`meta.x`",)),
    ("meta_list_value", line({"user": "alice", "text": "x", "meta": {"x": [1, 2]}}), ("`meta.x`",)),
    ("meta_not_object", line({"user": "alice", "text": "x", "meta": ["a"]}), ("`meta`",)),
    (
        "very_deep_meta",  # past orjson's depth limit: rejected as JSON, no RecursionError
        b'{"user": "alice", "text": "x", "meta": {"x": ' + b'{"y": ' * 3000 + b"1" + b"}" * 3000 + b"}}",
        ("invalid JSON",),
    ),
]
BAD_IDS = [case[0] for case in BAD_LINES]


def write_lines(path: Path, lines: list[bytes], *, eol: bytes = b"\n") -> Path:
    path.write_bytes(b"".join(item + eol for item in lines))
    return path


# ------------------------------------------------------------------------------------- each bad line, exit 3


@pytest.mark.parametrize(("case", "bad", "fragments"), BAD_LINES, ids=BAD_IDS)
def test_bad_line_stops_with_file_line_and_field(
    fake_env: Path, tmp_path: Path, case: str, bad: bytes, fragments: tuple[str, ...]
) -> None:
    src = write_lines(tmp_path / "input.jsonl", [*map(line, BEFORE), bad, *map(line, AFTER)])
    code, out, err = run("ingest", str(src))
    assert code == ExitCode.BAD_DATA == 3, err
    assert f"{src}:3:" in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert len(err) < 5_000  # the message does not echo the line
    summary = summary_of(out)
    assert summary["read"] == 2 and summary["added"] == 2 and "error" in summary
    assert stored_ids(fake_env) == uids(BEFORE)  # what came before is kept, nothing after it is written


@pytest.mark.parametrize("timestamp", [-253_402_300_799, "0001-01-01T00:00:00+05:00"], ids=["epoch", "iso"])
def test_timestamp_before_year_one_is_rejected(fake_env: Path, tmp_path: Path, timestamp: Any) -> None:
    src = write_lines(tmp_path / "input.jsonl", [line(rec(1)), line(rec(2, timestamp=timestamp))])
    code, out, err = run("ingest", str(src))
    assert code == 3, out
    assert f"{src}:2:" in err and "`timestamp`" in err


def test_bad_line_after_blank_lines_reports_the_physical_line(fake_env: Path, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "input.jsonl", [line(rec(1)), b"", b"   ", line(rec(2)), b"", b"{oops", line(rec(3))])
    code, out, err = run("ingest", str(src))
    assert code == 3 and f"{src}:6: invalid JSON" in err
    assert summary_of(out)["added"] == 2
    assert stored_ids(fake_env) == uids([rec(1), rec(2)])


def test_bad_line_on_stdin_is_named_stdin(fake_env: Path) -> None:
    code, out, err = run("ingest", "-", input=line(rec(1)).decode() + "\n[1]\n" + line(rec(2)).decode() + "\n")
    assert code == 3 and "<stdin>:2: expected a JSON object" in err
    assert summary_of(out)["added"] == 1
    assert stored_ids(fake_env) == uids([rec(1)])


def test_a_fixed_file_rerun_adds_only_the_rest(fake_env: Path, tmp_path: Path) -> None:
    bad = write_lines(tmp_path / "bad.jsonl", [*map(line, BEFORE), b'{"user": "alice"}', *map(line, AFTER)])
    assert run("ingest", str(bad))[0] == 3
    good = write_lines(tmp_path / "good.jsonl", [*map(line, BEFORE), *map(line, AFTER)])
    code, out, _ = run("ingest", str(good))
    summary = summary_of(out)
    assert code == 0 and (summary["added"], summary["duplicates"]) == (2, 2)
    assert stored_ids(fake_env) == uids(BEFORE + AFTER)


# ---------------------------------------------------------------------------------------- accepted inputs


def test_utf8_bom_on_line_one_is_accepted(fake_env: Path, tmp_path: Path) -> None:
    src = tmp_path / "bom.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + b"".join(line(r) + b"\n" for r in BEFORE + AFTER))
    code, out, err = run("ingest", str(src))
    assert code == 0, err
    assert summary_of(out)["added"] == 4 and summary_of(out)["invalid"] == 0
    assert stored_ids(fake_env) == uids(BEFORE + AFTER)


def test_crlf_line_endings_are_accepted(fake_env: Path, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "crlf.jsonl", [*map(line, BEFORE + AFTER), b""], eol=b"\r\n")
    code, out, err = run("ingest", str(src))
    assert code == 0, err
    assert summary_of(out)["added"] == 4
    docs = stored_documents(fake_env)
    assert not any(doc.endswith("\r") for doc in docs.values())


def test_bom_and_crlf_together_are_accepted(fake_env: Path, tmp_path: Path) -> None:
    src = tmp_path / "windows.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + b"".join(line(r) + b"\r\n" for r in BEFORE))
    code, out, err = run("ingest", str(src))
    assert code == 0, err
    assert summary_of(out)["added"] == 2


def test_blank_lines_are_skipped(fake_env: Path, tmp_path: Path) -> None:
    src = write_lines(
        tmp_path / "blank.jsonl", [b"", line(rec(1)), b"", b"  \t ", line(rec(2)), b"\r", b"", line(rec(3)), b"", b""]
    )
    code, out, err = run("ingest", str(src))
    assert code == 0, err
    summary = summary_of(out)
    assert (summary["read"], summary["added"], summary["invalid"]) == (3, 3, 0)


def test_ten_megabyte_line_is_accepted_and_truncated(fake_env: Path, tmp_path: Path) -> None:
    big = "risotto " * (10 * 1024 * 1024 // 8)  # 10 MiB of text in one record
    src = write_lines(tmp_path / "big.jsonl", [line(rec(1)), line({"user": "alice", "id": "big", "text": big})])
    assert src.stat().st_size > 10 * 1024 * 1024
    code, out, err = run("ingest", str(src))
    assert code == 0, err
    summary = summary_of(out)
    assert (summary["read"], summary["added"]) == (2, 2)
    docs = stored_documents(fake_env)
    big_uid = parse_record({"user": "alice", "id": "big", "text": "x"}).uid
    assert len(docs[big_uid]) == MAX_TEXT_CHARS
    assert docs[big_uid] == big.strip()[:MAX_TEXT_CHARS]


def test_ten_megabyte_bad_line_gives_a_short_message(fake_env: Path, tmp_path: Path) -> None:
    big = "x" * (10 * 1024 * 1024)
    src = write_lines(tmp_path / "big.jsonl", [line(rec(1)), line({"text": big}), line(rec(2))])
    code, out, err = run("ingest", str(src))
    assert code == 3 and f"{src}:2:" in err and "`user`" in err
    assert len(err) < 5_000
    assert summary_of(out)["added"] == 1


def test_duplicate_ids_with_different_content_keep_the_first(fake_env: Path, tmp_path: Path) -> None:
    """The store id comes from `id` scoped by user: a second line with the same id is a duplicate, whatever its
    text. The first version is kept; the same id for another user is a different record."""
    first = {"user": "alice", "id": "r1", "text": "First version: risotto with basil"}
    second = {"user": "alice", "id": "r1", "text": "Second version: ramen with garlic"}
    src = write_lines(tmp_path / "dups.jsonl", [line(first), line(second)])
    code, out, err = run("ingest", str(src))
    assert code == 0, err
    summary = summary_of(out)
    assert (summary["read"], summary["added"], summary["duplicates"]) == (2, 1, 1)
    assert list(stored_documents(fake_env).values()) == [first["text"]]

    other_user = write_lines(tmp_path / "other.jsonl", [line({**second, "user": "bob"})])
    code, out, _ = run("ingest", str(other_user))
    assert code == 0 and (summary_of(out)["added"], summary_of(out)["duplicates"]) == (1, 0)


def test_duplicate_ids_across_batches_are_counted_once(fake_env: Path, tmp_path: Path) -> None:
    first = {"user": "alice", "id": "r1", "text": "First version"}
    second = {"user": "alice", "id": "r1", "text": "Second version"}
    src = write_lines(tmp_path / "dups.jsonl", [line(first), line(rec(2)), line(second)])
    code, out, _ = run("ingest", "--batch-size", "1", str(src))
    summary = summary_of(out)
    assert code == 0 and (summary["read"], summary["added"], summary["duplicates"]) == (3, 2, 1)
    assert stored_documents(fake_env)[parse_record(first).uid] == "First version"


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf", b"\r\n"], ids=["empty", "blank", "bom", "crlf"])
def test_empty_file_is_fine(fake_env: Path, tmp_path: Path, content: bytes) -> None:
    src = tmp_path / "empty.jsonl"
    src.write_bytes(content)
    code, out, err = run("ingest", str(src))
    assert code == 0, err
    summary = summary_of(out)
    assert (summary["read"], summary["added"], summary["duplicates"], summary["invalid"]) == (0, 0, 0, 0)


# ------------------------------------------------------------------------------------- not found, exit 4


def test_directory_instead_of_a_file(fake_env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    code, _, err = run("ingest", str(folder))
    assert code == ExitCode.NOT_FOUND == 4
    assert str(folder) in err and "directory" in err


def test_missing_file(fake_env: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    code, _, err = run("ingest", str(missing))
    assert code == ExitCode.NOT_FOUND == 4
    assert str(missing) in err and "no such file" in err
    assert stored_ids(fake_env) == set()


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_a_bad_second_path_stops_ingest_before_the_first_record(fake_env: Path, tmp_path: Path, kind: str) -> None:
    good = write_lines(tmp_path / "good.jsonl", [*map(line, BEFORE)])
    second = tmp_path / "second"
    if kind == "directory":
        second.mkdir()
    code, out, err = run("ingest", str(good), str(second))
    assert code == 4 and str(second) in err
    assert summary_of(out)["read"] == 0  # every path is looked for first: nothing half-done to resume
    assert stored_ids(fake_env) == set()
    code, out, _ = run("ingest", str(good))
    assert code == 0 and stored_ids(fake_env) == uids(BEFORE)


# ---------------------------------------------------------------------------------------- --skip-invalid


def mixed_file(path: Path, bad_lines: list[bytes]) -> tuple[Path, list[int], list[dict[str, Any]]]:
    """Good and bad lines interleaved (a good one before each bad one, and one at the end)."""
    rows: list[bytes] = []
    bad_numbers: list[int] = []
    good: list[dict[str, Any]] = []
    for i, bad in enumerate(bad_lines):
        good.append(rec(i))
        rows.append(line(good[-1]))
        rows.append(bad)
        bad_numbers.append(len(rows))
    good.append(rec(len(bad_lines)))
    rows.append(line(good[-1]))
    return write_lines(path, rows), bad_numbers, good


def test_skip_invalid_over_every_bad_line(fake_env: Path, tmp_path: Path) -> None:
    src, bad_numbers, good = mixed_file(tmp_path / "mixed.jsonl", [bad for _, bad, _ in BAD_LINES])
    code, out, err = run("ingest", "--skip-invalid", str(src))
    assert code == 0, err
    summary = summary_of(out)
    assert summary["invalid"] == len(BAD_LINES)
    assert summary["read"] == summary["added"] == len(good)
    assert stored_ids(fake_env) == uids(good)
    reported = len(bad_numbers)
    for number in bad_numbers[:reported]:
        assert f"{src}:{number}:" in err, number


def test_skip_invalid_reports_each_bad_line_up_to_twenty(fake_env: Path, tmp_path: Path) -> None:
    chosen = [bad for _, bad, _ in BAD_LINES][:20]
    src, bad_numbers, _ = mixed_file(tmp_path / "mixed.jsonl", chosen)
    code, out, err = run("ingest", "--skip-invalid", str(src))
    assert code == 0 and summary_of(out)["invalid"] == 20
    for (case, _, fragments), number in zip(BAD_LINES[:20], bad_numbers, strict=True):
        assert f"{src}:{number}:" in err, case
        for fragment in fragments:
            assert fragment in err, (case, fragment)


def test_skip_invalid_reports_every_bad_line_even_past_twenty(fake_env: Path, tmp_path: Path) -> None:
    src, bad_numbers, _ = mixed_file(tmp_path / "mixed.jsonl", [bad for _, bad, _ in BAD_LINES])
    assert len(bad_numbers) > 20
    code, out, err = run("ingest", "--skip-invalid", str(src))
    assert code == 0 and summary_of(out)["invalid"] == len(bad_numbers)
    missing = [n for n in bad_numbers if f"{src}:{n}:" not in err]
    assert not missing, missing


def test_skip_invalid_reports_skipped_lines_even_when_a_later_file_is_bad(fake_env: Path, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "first.jsonl", [line(rec(1)), b"not json", line(rec(2))])
    later = write_lines(tmp_path / "later.jsonl", [b"\xff\xfe not UTF-8"])
    code, out, err = run("ingest", "--skip-invalid", str(src), str(later))
    assert code == 0 and summary_of(out)["invalid"] == 2 and summary_of(out)["added"] == 2
    assert f"{src}:2:" in err and f"{later}:1:" in err
    code, out, err = run("ingest", "--skip-invalid", str(src), str(tmp_path / "missing.jsonl"))
    assert code == 4 and summary_of(out)["read"] == 0  # a missing file stops the run before any line


# ---------------------------------------------------------------------------------- rich markup in messages


def test_message_names_a_file_whose_name_has_brackets(fake_env: Path, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "export[v2].jsonl", [line(rec(1)), b"{oops"])
    code, _, err = run("ingest", str(src))
    assert code == 3
    assert f"{src}:2:" in err, err


def test_message_quotes_a_bad_value_that_looks_like_markup(fake_env: Path, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "input.jsonl", [line({"user": "alice", "text": "x", "rating": "[bold]"})])
    code, _, err = run("ingest", str(src))
    assert code == 3 and "`rating`" in err
    assert "[bold]" in err, err


def test_skipped_line_names_a_file_whose_name_has_brackets(fake_env: Path, tmp_path: Path) -> None:
    src = write_lines(tmp_path / "export[v2].jsonl", [line(rec(1)), b"{oops"])
    code, _, err = run("ingest", "--skip-invalid", str(src))
    assert code == 0
    assert f"{src}:2:" in err, err


# ---------------------------------------------------------------------------- property: the record reader

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.integers()  # big integers: orjson may reject or turn them into floats
    | st.floats(allow_nan=True, allow_infinity=True)  # json.dumps writes NaN / Infinity literals
    | st.text(max_size=30)
    | st.sampled_from(["", " ", "2025-03-14T19:22:00Z", "1735689600", "1e400", "nan", "-inf", "0001-01-01"])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
FIELD_NAMES = st.sampled_from(sorted(KNOWN_FIELDS)) | st.text(max_size=8)


@st.composite
def json_object_lines(draw: st.DrawFn) -> bytes:
    obj = draw(st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=8))
    if draw(st.booleans()):  # often a plausible record, so the later checks are reached
        obj.setdefault("user", draw(st.sampled_from(["alice", 7, "", " bob "])))
        obj.setdefault("text", draw(st.text(max_size=40)))
    text = json.dumps(obj, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")  # lone surrogates make invalid UTF-8: reported, not a crash


RANDOM_LINES = st.one_of(
    st.binary(max_size=80),
    st.text(max_size=80).map(lambda s: s.encode("utf-8", "surrogatepass")),
    json_object_lines(),
    st.sampled_from([b"", b"   ", b"\r", b"\xef\xbb\xbf", b"\t\x0c", b"[]", b"{}", b"null"]),
).map(lambda raw: raw.replace(b"\n", b" "))  # a line never holds b"\n": file iteration splits on it


def non_blank_line_numbers(lines: list[bytes]) -> list[int]:
    numbers = []
    for number, raw in enumerate(lines, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if raw.strip():
            numbers.append(number)
    return numbers


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(RANDOM_LINES, max_size=12), trailing_newline=st.booleans())
def test_reader_never_raises_and_accounts_for_every_line(lines: list[bytes], trailing_newline: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random.jsonl"
        path.write_bytes(b"\n".join(lines) + (b"\n" if trailing_newline and lines else b""))
        items = list(read_records([str(path)], skip_invalid=True))
    expected = non_blank_line_numbers(lines)
    records = [item for item in items if isinstance(item, Record)]
    invalid = [item for item in items if isinstance(item, InvalidLine)]
    assert len(records) + len(invalid) == len(items) == len(expected)
    assert {item.line for item in invalid} <= set(expected)
    for item in invalid:
        assert item.source == str(path) and item.reason
        assert str(item).startswith(f"{path}:{item.line}: ")
    for record in records:
        assert record.user.strip() and record.text.strip() and len(record.text) <= MAX_TEXT_CHARS


@settings(max_examples=100, deadline=None)
@given(obj=json_object_lines())
def test_parse_record_only_raises_value_error(obj: bytes) -> None:
    """The same through parse_record directly: a bad object raises ValueError (never TypeError, OverflowError...)."""
    import orjson

    try:
        value = orjson.loads(obj)
    except orjson.JSONDecodeError:
        return
    try:
        parse_record(value)
    except ValueError as exc:
        assert str(exc)
