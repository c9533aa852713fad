"""Realistic sample data: storm events with the columns of ADX's StormEvents table, as CSV rows
and as JSON records, deterministic for a seed, optionally sprinkled with poison records; and the
records of the Kafka tutorial's producer (:func:`to_tutorial_csv`).

The tutorial is Microsoft's "Ingest data from Apache Kafka into Azure Data Explorer"; its lab
(Azure/azure-kusto-labs, kafka-integration/dockerized-quickstart) has a Go producer that reads
StormEvents.csv, keeps columns 0, 1, 3, 4, 5 and 12 of each row (StartTime, EndTime, EventId,
State, EventType, Source), writes them with Go's ``encoding/csv`` writer and sends each record,
newline included, as one Kafka message with neither key nor headers to ``storm-events``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from shared.mapping.types import csv_line, format_datetime

COLUMNS = [
    "StartTime", "EndTime", "EpisodeId", "EventId", "State", "EventType", "InjuriesDirect",
    "InjuriesIndirect", "DeathsDirect", "DeathsIndirect", "DamageProperty", "DamageCrops", "Source",
    "BeginLocation", "EndLocation", "BeginLat", "BeginLon", "EndLat", "EndLon", "EpisodeNarrative",
    "EventNarrative", "StormSummary",
]  # fmt: skip
"""StormEvents columns, in table order."""

STATES = [
    "TEXAS", "KANSAS", "IOWA", "ILLINOIS", "MISSOURI", "GEORGIA", "NEBRASKA", "OKLAHOMA",
    "MINNESOTA", "NEW YORK", "VIRGINIA", "KENTUCKY", "PENNSYLVANIA", "FLORIDA", "COLORADO",
]  # fmt: skip
EVENT_TYPES = [
    "Thunderstorm Wind", "Hail", "Flash Flood", "Drought", "Winter Weather", "Winter Storm",
    "Heavy Snow", "High Wind", "Flood", "Tornado", "Heavy Rain", "Lightning",
]  # fmt: skip
SOURCES = ["Trained Spotter", "Public", "Emergency Manager", "Law Enforcement", "COOP Observer", "ASOS"]
TOWNS = ["MELBOURNE", "ADAIR", "WESTON", "PLAINVIEW", "CENTERVILLE", "FAIRFIELD", "OAKDALE", "RIVERTON"]


def storm_events(count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """``count`` storm events as dicts with StormEvents columns (StormSummary is an object)."""
    rng = random.Random(seed)
    base = datetime(2007, 1, 1, tzinfo=UTC)
    for index in range(count):
        start = base + timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        end = start + timedelta(minutes=rng.randrange(0, 600))
        state = rng.choice(STATES)
        event_type = rng.choice(EVENT_TYPES)
        lat = round(rng.uniform(25.0, 49.0), 4)
        lon = round(rng.uniform(-124.0, -67.0), 4)
        town = rng.choice(TOWNS)
        injuries = rng.choice([0, 0, 0, 0, 1, 2])
        damage = rng.choice([0, 0, 1000, 5000, 20000, 150000])
        yield {
            "StartTime": format_datetime(start, 0),
            "EndTime": format_datetime(end, 0),
            "EpisodeId": 1000 + index // 5,
            "EventId": 10000 + index,
            "State": state,
            "EventType": event_type,
            "InjuriesDirect": injuries,
            "InjuriesIndirect": 0,
            "DeathsDirect": 0,
            "DeathsIndirect": 0,
            "DamageProperty": damage,
            "DamageCrops": rng.choice([0, 0, 0, 2500]),
            "Source": rng.choice(SOURCES),
            "BeginLocation": town,
            "EndLocation": town,
            "BeginLat": lat,
            "BeginLon": lon,
            "EndLat": round(lat + rng.uniform(-0.05, 0.05), 4),
            "EndLon": round(lon + rng.uniform(-0.05, 0.05), 4),
            "EpisodeNarrative": f"{event_type} moved across {state.title()} during the afternoon.",
            "EventNarrative": f"{event_type} reported near {town.title()} by a {rng.choice(SOURCES).lower()}.",
            "StormSummary": {
                "TotalDamages": damage,
                "StartTime": format_datetime(start, 0),
                "Details": {"Description": f"{event_type} near {town.title()}", "Location": state},
            },
        }


def to_json(event: dict[str, Any]) -> bytes:
    """One event as a JSON record."""
    return orjson.dumps(event)


def to_csv(event: dict[str, Any]) -> bytes:
    """One event as a CSV row in StormEvents column order (StormSummary as JSON text)."""
    return csv_line([event[c] for c in COLUMNS]).encode("utf-8")


TUTORIAL_COLUMNS = ["StartTime", "EndTime", "EventId", "State", "EventType", "Source"]
"""The fields of a tutorial record, in order: the columns of the tutorial's ``Storms`` table."""
TUTORIAL_SOURCE_ORDINALS = (0, 1, 3, 4, 5, 12)
"""The StormEvents.csv columns the tutorial's producer keeps (its ``mapping`` of ordinals)."""

# Go's unicode.IsSpace: a field starting with one of these is quoted by encoding/csv. Python's
# str.isspace differs (it also holds \x1c-\x1f), hence the explicit set.
_GO_SPACES = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)


def _go_needs_quotes(field: str, comma: str) -> bool:
    # encoding/csv Writer.fieldNeedsQuotes: never the empty field; always `\.` (a Postgres
    # end-of-data marker); the delimiter, a quote, \r or \n anywhere; or a leading space.
    if not field:
        return False
    if field == "\\.":
        return True
    if comma in field or '"' in field or "\r" in field or "\n" in field:
        return True
    return field[0] in _GO_SPACES


def go_csv_record(fields: Sequence[str], comma: str = ",") -> str:
    """One record as Go's ``encoding/csv`` ``Writer`` writes it (``UseCRLF`` false, the
    default): fields quoted only when they need it, a quote doubled inside quotes, \r and \n
    inside a quoted field kept as they are, and the record ended by ``\n``."""
    out = []
    for field in fields:
        out.append('"' + field.replace('"', '""') + '"' if _go_needs_quotes(field, comma) else field)
    return comma.join(out) + "\n"


def stormevents_datetime(value: datetime) -> str:
    """A datetime as StormEvents.csv writes it: ``2007-01-01 00:00:00.0000000`` (UTC, a space
    between date and time, seven fractional digits, no zone)."""
    stamp = format_datetime(value, 7)  # 2007-01-01T00:00:00.0000000Z
    return f"{stamp[:10]} {stamp[11:-1]}"


def tutorial_fields(event: dict[str, Any]) -> list[str]:
    """The six text fields the tutorial's producer sends for ``event`` (a :func:`storm_events`
    dict), datetimes in StormEvents.csv's format."""
    return [
        stormevents_datetime(datetime.fromisoformat(str(event["StartTime"]))),
        stormevents_datetime(datetime.fromisoformat(str(event["EndTime"]))),
        str(event["EventId"]),
        str(event["State"]),
        str(event["EventType"]),
        str(event["Source"]),
    ]


def to_tutorial_csv(event: dict[str, Any]) -> bytes:
    """One event as the tutorial's producer sends it: the message value, its trailing newline
    included."""
    return go_csv_record(tutorial_fields(event)).encode("utf-8")


POISON_JSON = [
    b'{"StartTime": "2007-01-01T00:00:00Z", "EventId": ',  # truncated JSON
    b'{"StartTime": "not a date", "EventId": 1, "State": "TEXAS"}',  # unconvertible datetime
    b'{"StartTime": "2007-01-01T00:00:00Z", "EventId": "many", "State": "IOWA"}',  # not an int
    b"\xff\xfe not utf-8",  # invalid UTF-8
    b"[1, 2, 3]",  # JSON, but not an object
]
POISON_CSV = [
    b"2007-01-01T00:00:00Z,2007-01-01T01:00:00Z,1,2,TEXAS",  # too few fields
    b'2007-01-01T00:00:00Z,"quoted"trailing,1,2,IOWA,Hail,0,0,0,0,0,0,Public,A,A,1,2,3,4,x,y,{}',  # bad quoting
    b"2007-01-01T00:00:00Z,2007-01-01T01:00:00Z,x,y,IOWA,Hail,,,,,,,\xff,,,,,,,,,",  # invalid UTF-8
]
POISON_TUTORIAL = [
    b"2007-01-01 00:00:00.0000000,2007-01-01 01:00:00.0000000,13208,TEXAS,Hail\n",  # five fields
    b'2007-01-01 00:00:00.0000000,2007-01-01 01:00:00.0000000,13209,"IOWA"x,Hail,Public\n',  # bad quoting
    b"2007-01-01 00:00:00.0000000,2007-01-01 01:00:00.0000000,13210,\xff,Hail,Public\n",  # invalid UTF-8
]
"""Records the tutorial's table cannot take, in the tutorial producer's framing."""


def write_sample(directory: str | Path, count: int, *, poison_every: int = 0, seed: int = 7) -> tuple[Path, Path]:
    """Write ``storm-events.csv`` and ``storm-events.jsonl``; every ``poison_every``-th record
    (0: none) is followed by a poison record. Returns the two paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    csv_path = directory / "storm-events.csv"
    json_path = directory / "storm-events.jsonl"
    with open(csv_path, "wb") as csv_out, open(json_path, "wb") as json_out:
        for index, event in enumerate(storm_events(count, seed), start=1):
            csv_out.write(to_csv(event) + b"\n")
            json_out.write(to_json(event) + b"\n")
            if poison_every and index % poison_every == 0:
                n = index // poison_every
                csv_out.write(POISON_CSV[n % len(POISON_CSV)] + b"\n")
                json_out.write(POISON_JSON[n % len(POISON_JSON)] + b"\n")
    return csv_path, json_path


def write_tutorial_sample(directory: str | Path, count: int, *, poison_every: int = 0, seed: int = 7) -> Path:
    """Write ``storm-events-tutorial.csv``: the Kafka tutorial producer's records, one after the
    other as its messages' values (each ends with its newline); every ``poison_every``-th record
    (0: none) is followed by a poison record. Returns the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "storm-events-tutorial.csv"
    with open(path, "wb") as out:
        for index, event in enumerate(storm_events(count, seed), start=1):
            out.write(to_tutorial_csv(event))
            if poison_every and index % poison_every == 0:
                out.write(POISON_TUTORIAL[(index // poison_every) % len(POISON_TUTORIAL)])
    return path
