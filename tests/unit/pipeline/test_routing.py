"""shared/pipeline/routing.py: topic -> route -> destination, exact names before patterns before
``*``, and header routing only to the route's own target or its allow-list."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.errors import ConfigError, RecordError
from shared.pipeline.records import Record
from shared.pipeline.routing import Router
from tests.support.records import make_config, rec

JSON = {"table": "T", "format": "json", "mapping": "T_json"}


def router(*routes: dict[str, object]) -> Router:
    return Router(make_config(routes=list(routes)))


def with_headers(topic: str, *headers: tuple[str, bytes | None]) -> Record:
    return replace(rec(b'{"a": "x"}', topic, 1), headers=headers)


def test_exact_topic_beats_pattern_beats_catch_all() -> None:
    r = router(
        {"topic": "orders-*", "table": "T", "format": "csv", "mapping": "T_csv"},
        {"topic": "*", "table": "Raw", "format": "txt"},
        {"topic": "orders-eu", **JSON},
    )
    assert [getattr(r.route_for(t), "format", None) for t in ("orders-eu", "orders-us", "audit")] == [
        "json", "csv", "txt"
    ]


def test_a_pattern_after_a_catch_all_or_a_repeated_topic_is_refused_not_silently_shadowed() -> None:
    """Patterns are tried in file order and the first match wins: a ``*`` before ``orders-*``
    would take every orders topic, and the second of two routes for one topic none; the
    ingestion file is refused instead (tests/unit/test_config.py has the cases)."""
    with pytest.raises(ConfigError, match=r"routes\[1\] \(topic 'orders-\*'\) can never match"):
        router({"topic": "*", "table": "Raw", "format": "txt"},
               {"topic": "orders-*", "table": "T", "format": "csv", "mapping": "T_csv"})  # fmt: skip
    with pytest.raises(ConfigError, match=r"routes\[1\] \(topic 'json'\) can never match"):
        router({"topic": "json", **JSON}, {"topic": "json", "table": "Raw", "format": "txt"})


def test_a_topic_without_a_route_is_an_error_naming_it_not_a_drop() -> None:
    r = router({"topic": "json", **JSON})
    assert r.route_for("elsewhere") is None
    with pytest.raises(RecordError, match="no route for topic 'elsewhere'") as info:
        r.resolve(rec(b"{}", "elsewhere"))
    assert info.value.stage == "route"


def test_pattern_matching_is_case_sensitive_shell_style() -> None:
    r = router({"topic": "logs-?", "table": "Raw", "format": "txt"})
    assert r.route_for("logs-1") is not None
    assert r.route_for("logs-12") is None
    assert r.route_for("LOGS-1") is None


def test_destination_takes_the_config_database_and_the_route_mapping() -> None:
    r = router({"topic": "json", **JSON}, {"topic": "other", "database": "db2", "table": "Raw", "format": "txt"})
    _, dest = r.resolve(rec(b"{}", "json"))
    assert (dest.database, dest.table, dest.format, dest.mapping, dest.apply) == ("db", "T", "json", "T_json", "server")
    _, dest = r.resolve(rec(b"x", "other"))
    assert (dest.database, dest.table, dest.mapping) == ("db2", "Raw", None)


def test_routing_headers_are_ignored_on_a_route_without_an_allow_list() -> None:
    r = router({"topic": "json", **JSON})
    _, dest = r.resolve(with_headers("json", ("Table", b"Raw"), ("Format", b"txt")))
    assert dest.table == "T"


def test_header_routing_goes_only_to_the_allow_list() -> None:
    r = router({"topic": "json", **JSON, "header_routing": [{"table": "Raw", "format": "txt"}]})
    _, dest = r.resolve(with_headers("json", ("Table", b"Raw"), ("Format", b"TXT")))  # format in any case
    assert (dest.table, dest.format, dest.mapping) == ("Raw", "txt", None)
    # The route's own target is always allowed, named explicitly or not.
    _, own = r.resolve(with_headers("json", ("Table", b"T"), ("IngestionMappingReference", b"T_json")))
    assert (own.table, own.mapping) == ("T", "T_json")
    with pytest.raises(RecordError, match=r"Table='Secret'.*not on the allow-list of route 'json'") as info:
        r.resolve(with_headers("json", ("Table", b"Secret")))
    assert (info.value.stage, info.value.field) == ("route", "Table")
    # Raw is allowed only as txt: the same table in another format is not on the list.
    with pytest.raises(RecordError, match="not on the allow-list"):
        r.resolve(with_headers("json", ("Table", b"Raw"), ("Format", b"json")))


def test_header_routing_reads_the_last_header_and_ignores_other_headers() -> None:
    r = router({"topic": "json", **JSON, "header_routing": [{"table": "Raw", "format": "txt"}]})
    _, dest = r.resolve(with_headers("json", ("trace", b"1"), ("Table", b"Secret"), ("Table", b" Raw ")))
    assert dest.table == "Raw"  # the last Table header wins, trimmed
    _, dest = r.resolve(with_headers("json", ("trace", b"1")))
    assert dest.table == "T"


def test_an_allow_list_target_inherits_the_route_mapping_only_for_the_same_table_and_format() -> None:
    r = router({"topic": "json", **JSON, "header_routing": [{"table": "T", "database": "db2"}]})
    _, dest = r.resolve(with_headers("json", ("Database", b"db2")))
    assert (dest.database, dest.table, dest.format, dest.mapping) == ("db2", "T", "json", "T_json")


def test_a_routing_header_that_is_not_utf8_is_an_error_naming_it() -> None:
    r = router({"topic": "json", **JSON, "header_routing": [{"table": "Raw", "format": "txt"}]})
    with pytest.raises(RecordError, match="routing header Table is not valid UTF-8") as info:
        r.resolve(with_headers("json", ("Table", b"\xff")))
    assert info.value.field == "Table"
