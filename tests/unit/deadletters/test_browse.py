"""Browsing dead letters (``deadletters list`` / ``show``): the shared filter, grouping by reason
kind, ids, decoded values, and the CLI over a real local store."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from shared.cli.app import main
from shared.deadletters.browse import group_letters, iter_letters, letters_by_id, resolve_ids
from shared.deadletters.filters import LetterFilter, parse_when, reason_kind, reason_text
from shared.deadletters.local import LocalDeadLetterStore
from shared.deadletters.render import as_text, describe, hexdump, show_bytes, to_json
from shared.deadletters.replay import LocalReplayMarks, fingerprint
from shared.errors import ConfigError
from shared.pipeline.deadletter import DeadLetter
from shared.pipeline.destination import Destination
from tests.support.records import rec

EVENTS = Destination("db", "Events", "json", "EventsMap", "server")
NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


def letter(offset: int, reason: str, stage: str = "decode", *, value: bytes | None = b"{bad",
           dest: Destination | None = EVENTS, minutes_ago: int = 0, **kw: object) -> DeadLetter:
    record = rec(value, topic="events", offset=offset, **kw)
    return DeadLetter(record=record, reason=f"{record.where}: {reason}", stage=stage, destination=dest,
                      time=NOW - timedelta(minutes=minutes_ago))


@pytest.fixture
def store(tmp_path: Path) -> LocalDeadLetterStore:
    store = LocalDeadLetterStore(tmp_path / "dl")
    store.write([letter(i, f"invalid JSON at line 1 column {i}", minutes_ago=30 - i) for i in range(3)])
    store.write([letter(7, "record is 5000 bytes, over the limit of 4000", "size", value=bytes(range(200)), dest=None,
                        key=b"k", headers=(("Table", b"Events"), ("bin", b"\x00\xff")))])
    store.write([letter(9, "terminal sink failure: BadRequest_MappingReferenceWasNotFound", "sink", value=b"x")])
    return store


def refs(store: LocalDeadLetterStore, flt: LetterFilter | None = None, **kw: bool) -> list[str]:
    return [r.id for r in iter_letters(store, LocalReplayMarks(store.directory), flt or LetterFilter(), **kw)]


def test_reason_kind_drops_the_position_and_the_numbers() -> None:
    first, second = letter(1, "invalid JSON at char 12"), letter(2, "invalid JSON at char 345")
    assert reason_text(first) == "invalid JSON at char 12"
    assert reason_kind(first) == reason_kind(second) == "invalid JSON at char N"
    file_letter = DeadLetter(record=rec(b"x", origin="in.csv"), reason="in.csv:3 (json[0]@3): bad row", stage="map")
    assert reason_text(file_letter) == "bad row"
    long = reason_kind(letter(1, "terminal sink failure: " + "x" * 500 + " BadRequest_EntityNotFound"))
    assert len(long) == 120 and long.startswith("terminal sink failure: ") and long.endswith("BadRequest_EntityNotFound")
    assert " ... " in long
    sink = letter(1, "terminal sink failure: ADX queued ingestion of batch 7515f3228f0d -> db1.Events: 4 records")
    assert reason_kind(sink) == "terminal sink failure: ADX queued ingestion of batch ID -> db1.Events: N records"


def test_the_filter_selects_by_every_criterion() -> None:
    one = letter(1, "invalid JSON", minutes_ago=10)
    assert LetterFilter(stage="decode", table="Events", reason="invalid json").matches(one)
    assert not LetterFilter(stage="sink").matches(one)
    assert not LetterFilter(reason="mapping").matches(one)
    assert LetterFilter(since=NOW - timedelta(minutes=11)).matches(one)
    assert not LetterFilter(since=NOW - timedelta(minutes=9)).matches(one)
    assert parse_when("10m", NOW) == NOW - timedelta(minutes=10)
    with pytest.raises(ConfigError, match="not a time"):
        parse_when("yesterday")


def test_groups_count_letters_of_one_stage_reason_and_table(store: LocalDeadLetterStore) -> None:
    groups = group_letters(iter_letters(store, LocalReplayMarks(store.directory), LetterFilter()))
    assert [(g.stage, g.table, g.count) for g in groups] == [
        ("decode", "db.Events", 3), ("sink", "db.Events", 1), ("size", "(unrouted)", 1)]
    decode = groups[0]
    assert decode.kind == "invalid JSON at line N column N"
    assert (decode.first, decode.last) == (NOW - timedelta(minutes=30), NOW - timedelta(minutes=28))
    assert decode.pending == 3 and decode.sample.endswith(":0")


def test_replayed_letters_are_left_out_unless_asked_for(store: LocalDeadLetterStore) -> None:
    set_id = next(iter(store.sets()))
    marks = LocalReplayMarks(store.directory)
    marks.put_mark(set_id, {"fingerprint": fingerprint(store.read(set_id)), "replayed": [0, 2]})
    assert f"{set_id}:0" not in refs(store) and f"{set_id}:1" in refs(store)
    assert {f"{set_id}:0", f"{set_id}:2"} <= set(refs(store, include_replayed=True))
    [group] = [g for g in group_letters(iter_letters(store, marks, LetterFilter(), include_replayed=True))
               if g.stage == "decode"]
    assert (group.count, group.pending) == (3, 1)


def test_ids_name_a_letter_or_a_set_by_a_unique_prefix(store: LocalDeadLetterStore) -> None:
    marks = LocalReplayMarks(store.directory)
    set_id = next(iter(store.sets()))
    assert resolve_ids(store, [set_id[:8], f"{set_id}:2"]) == [(set_id, None), (set_id, 2)]
    assert [r.index for r in letters_by_id(store, marks, [set_id[:8]])] == [0, 1, 2]
    assert [r.id for r in letters_by_id(store, marks, [f"{set_id}:1"])] == [f"{set_id}:1"]
    with pytest.raises(ConfigError, match="at least 6"):
        resolve_ids(store, ["abc"])
    with pytest.raises(ConfigError, match="no dead-letter set"):
        resolve_ids(store, ["ffffffffffff"])
    with pytest.raises(ConfigError, match="holds 3 letter"):
        letters_by_id(store, marks, [f"{set_id}:3"])


def test_values_are_text_when_they_are_text_and_hex_dumped_when_not() -> None:
    assert as_text(b'{"a": "\xc3\xa9"}') == '{"a": "\u00e9"}'
    assert as_text(b"\x00\x01") is None and as_text(b"\xff") is None and as_text(b"\x1b[31mred") is None
    assert show_bytes(b"line1\nline2", 120, 64) == ["line1\\nline2"]
    assert show_bytes(b"abcdefghij" * 3, 10, 64) == ["abcdefghij... (+20 chars)"]
    assert show_bytes(None, 10, 10) == ["null"]
    rows = hexdump(bytes(range(40)), 20)
    assert rows[0] == "00000000  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f  ................"
    assert rows[1].startswith("00000010  10 11 12 13 ") and rows[-1] == "... (+20 bytes)"


def test_a_letter_shows_where_it_came_from_why_and_what_it_held(store: LocalDeadLetterStore) -> None:
    marks = LocalReplayMarks(store.directory)
    [ref] = [r for r in iter_letters(store, marks, LetterFilter(stage="size"))]
    text = "\n".join(describe(ref, width=40, max_bytes=32))
    assert f"{ref.id}  stage=size  table=(unrouted)" in text
    assert "from    kafka events partition 0 offset 7" in text
    assert "reason  record is 5000 bytes, over the limit of 4000" in text
    assert "key     k" in text and "header Table Events" in text and "header bin binary, 2 bytes:" in text
    assert "value   binary, 200 bytes:" in text and "... (+168 bytes)" in text
    data = to_json(ref)
    assert base64.b64decode(data["value"]["base64"]) == bytes(range(200))
    assert data["headers"][0] == {"key": "Table", "value": {"text": "Events", "bytes": 6}}
    assert (data["topic"], data["partition"], data["offset"], data["stage"]) == ("events", 0, 7, "size")


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_list_and_show_on_the_command_line(store: LocalDeadLetterStore) -> None:
    folder = str(store.directory)
    code, out = cli("deadletters", "list", "--dir", folder)
    assert code == 0, out
    assert "invalid JSON at line N column N" in out and "5 letter(s) in 3 group(s) from 3 set(s)" in out
    code, out = cli("deadletters", "list", "--dir", folder, "--stage", "sink", "--json")
    data = orjson.loads(out)
    assert code == 0 and data["letters"] == 1 and data["groups"][0]["reason"].startswith("terminal sink failure")
    code, out = cli("deadletters", "show", "--dir", folder, "--reason", "json", "-n", "2")
    assert code == 0 and out.count("stage=decode") == 2
    code, out = cli("deadletters", "show", "--dir", folder, "--json", "--table", "Events", "--since", "2024-05-01T11:31Z")
    assert [orjson.loads(line)["offset"] for line in out.splitlines()] == [1, 2, 9]
    code, out = cli("deadletters", "show", "--dir", folder, "nosuchset")
    assert code == 2 and "no dead-letter set has this id" in out


def test_list_of_an_empty_store_says_so(tmp_path: Path) -> None:
    code, out = cli("deadletters", "list", "--dir", str(tmp_path / "none"))
    assert code == 0 and "no dead letters waiting for a replay match" in out
