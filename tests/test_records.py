from __future__ import annotations

from pathlib import Path

import pytest

from logo_cli.errors import BadRecord, NotFound
from logo_cli.records import InvalidLine, Record, parse_record, parse_time, read_records


def test_text_record_with_all_fields() -> None:
    r = parse_record(
        {
            "user": "maya",
            "text": " Loved it ",
            "timestamp": "2025-03-14T19:22:00Z",
            "id": "m1",
            "item": "Parasite",
            "rating": 5,
            "label": "like",
            "meta": {"area": "films"},
        }
    )
    assert (r.user, r.text, r.item, r.rating, r.label, r.source_id) == (
        "maya",
        "Loved it",
        "Parasite",
        5.0,
        "like",
        "m1",
    )
    assert r.timestamp == parse_time("2025-03-14T19:22:00+00:00")
    assert r.meta == {"area": "films"}


def test_lamp_query_response_and_user_id_alias() -> None:
    r = parse_record({"user_id": 42, "query": "Best pasta?", "response": "Cacio e pepe"})
    assert r.user == "42"
    assert r.text == "Q: Best pasta?\nA: Cacio e pepe"


def test_epoch_and_naive_times() -> None:
    assert parse_time(1_700_000_000) == 1_700_000_000.0
    assert parse_time("1700000000") == 1_700_000_000.0
    assert parse_time("2025-01-01T00:00:00") == parse_time("2025-01-01T00:00:00Z")


@pytest.mark.parametrize("value", ["nan", "inf", "1e400", float("nan"), 1_700_000_000_000, "2025-13-01", True])
def test_unusable_times_are_rejected(value: object) -> None:
    with pytest.raises(ValueError):
        parse_time(value)


@pytest.mark.parametrize(
    ("value", "reason"), [("0001-01-02T00:00:00Z", "before 1970"), (-1, "before 1970"), ("9999-01-01", "future")]
)
def test_a_record_dated_outside_logos_time_is_refused(value: object, reason: str) -> None:
    """Found by a helper playing attacker: one record dated in the year 1 made global memory release 4,065
    half-year periods, each adding noise to every figure (a 49-person store read "Kyoto: 2491 people").
    `--at` may still ask about any time: only records are held to 1970 .. a year ahead."""
    with pytest.raises(ValueError, match=reason):
        parse_record({"user": "a", "text": "an old note", "timestamp": value})
    assert isinstance(parse_time(value), float)  # `--at` still reads it
    assert parse_record({"user": "a", "text": "the first second", "timestamp": 0}).timestamp == 0.0


def test_millisecond_epochs_get_a_hint() -> None:
    with pytest.raises(ValueError, match="milliseconds"):
        parse_time(1_700_000_000_000)


def test_ids_are_stable_and_user_scoped() -> None:
    a = parse_record({"user": "a", "text": "x", "id": "1"})
    b = parse_record({"user": "b", "text": "x", "id": "1"})
    assert a.uid == parse_record({"user": "a", "text": "changed", "id": "1"}).uid
    assert a.uid != b.uid
    c1 = parse_record({"user": "a", "text": "same", "timestamp": 5})
    c2 = parse_record({"user": "a", "text": "same", "timestamp": 6})
    assert c1.uid != c2.uid
    assert c1.uid == parse_record({"user": "a", "text": "same", "timestamp": 5}).uid


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ([1, 2], "expected a JSON object"),
        ({"text": "x"}, "`user`"),
        ({"user": " ", "text": "x"}, "`user`"),
        ({"user": "a"}, "`text`"),
        ({"user": "a", "text": ""}, "`text`"),
        ({"user": "a", "query": "q"}, "`response`"),
        ({"user": "a", "text": "x", "rating": "five"}, "`rating`"),
        ({"user": "a", "text": "x", "rating": True}, "`rating`"),
        ({"user": "a", "text": "x", "rating": 1e20}, "within ±1,000,000"),  # took everyone's precision in a sum
        ({"user": "a", "text": "x", "rating": -1e308}, "within ±1,000,000"),
        ({"user": "a", "text": "x", "timestamp": "yesterday"}, "`timestamp`"),
        ({"user": "a", "text": "x", "meta": {"deep": {"x": 1}}}, "meta.deep"),
        ({"user": "a", "text": "x", "meta": [1]}, "`meta`"),
        ({"user": "a", "text": 7}, "`text`"),
    ],
)
def test_invalid_records_name_the_field(obj: object, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_record(obj)
    assert reason in str(info.value)


def test_reader_reports_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "h.jsonl"
    f.write_bytes(b'\xef\xbb\xbf{"user": "a", "text": "one"}\r\n\n{"user": "a", "text": "two"}\n{oops\n')
    out = list(read_records([str(f)], skip_invalid=True))
    assert [r.text for r in out if isinstance(r, Record)] == ["one", "two"]
    bad = [r for r in out if isinstance(r, InvalidLine)]
    assert len(bad) == 1 and bad[0].line == 4 and str(bad[0]).startswith(f"{f}:4: invalid JSON")
    with pytest.raises(BadRecord) as info:
        list(read_records([str(f)]))
    assert info.value.line == 4 and str(f) in info.value.message


def test_reader_rejects_nan_and_non_utf8(tmp_path: Path) -> None:
    f = tmp_path / "h.jsonl"
    f.write_bytes(b'{"user": "a", "text": "x", "rating": NaN}\n{"user": "a", "text": "\xff\xfe"}\n')
    bad = [r for r in read_records([str(f)], skip_invalid=True) if isinstance(r, InvalidLine)]
    assert [b.line for b in bad] == [1, 2]
    assert "UTF-8" in bad[1].reason


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no such file"):
        list(read_records([str(tmp_path / "nope.jsonl")]))
    with pytest.raises(NotFound, match="directory"):
        list(read_records([str(tmp_path)]))
    good = tmp_path / "good.jsonl"
    good.write_text('{"user": "a", "text": "x"}\n')
    reader = read_records([str(good), str(tmp_path / "typo.jsonl")])
    with pytest.raises(NotFound, match=r"typo\.jsonl: no such file"):
        next(reader)  # before the first record: nothing of good.jsonl is embedded, then stopped
