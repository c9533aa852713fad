"""``kafka-adx init``: columns inferred from an Avro schema, a JSON Schema and sample records, and
the ingestion file it writes, which must load and ingest as written."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from click.testing import CliRunner

from shared.cli.app import main
from shared.config import load_config
from shared.formats import infer

AVRO = {
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "qty", "type": "int"},
        {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
        {"name": "placed", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "at", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "blob", "type": "bytes"},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}},
        {"name": "lines", "type": {"type": "array", "items": "string"}},
        {"name": "ship", "type": {"type": "record", "name": "Address", "fields": [
            {"name": "city", "type": "string"}, {"name": "lat", "type": "double"}]}},
        {"name": "bill", "type": ["null", "Address"], "default": None},
        {"name": "either", "type": ["int", "string"]},
    ],
}  # fmt: skip


def kinds(columns: list[infer.Inferred]) -> dict[str, tuple[str, str | None]]:
    return {c.name: (c.type, c.path) for c in columns}


def test_avro_types_map_to_adx_types() -> None:
    assert kinds(infer.from_avro(AVRO)) == {
        "id": ("long", "$.id"), "qty": ("int", "$.qty"), "price": ("decimal", "$.price"),
        "placed": ("datetime", "$.placed"), "ref": ("guid", "$.ref"), "day": ("datetime", "$.day"),
        "at": ("timespan", "$.at"), "note": ("string", "$.note"), "blob": ("string", "$.blob"),
        "status": ("string", "$.status"), "lines": ("dynamic", "$.lines"), "ship": ("dynamic", "$.ship"),
        "bill": ("dynamic", "$.bill"), "either": ("dynamic", "$.either"),
    }  # fmt: skip


def test_avro_nested_records_flatten_by_flag_including_named_references() -> None:
    flat = kinds(infer.from_avro(AVRO, flatten=True))
    assert flat["ship_city"] == ("string", "$.ship.city") and flat["ship_lat"] == ("real", "$.ship.lat")
    assert flat["bill_city"] == ("string", "$.bill.city")  # "Address" by name, through a nullable union
    assert "ship" not in flat


def test_json_schema_properties() -> None:
    schema = {"type": "object", "properties": {
        "id": {"type": "integer"}, "when": {"type": "string", "format": "date-time"}, "ok": {"type": ["boolean", "null"]},
        "score": {"type": "number"}, "tags": {"type": "array"}, "who": {"type": "object", "properties": {"n": {"type": "string"}}},
    }}  # fmt: skip
    assert kinds(infer.from_json_schema(schema)) == {
        "id": ("long", "$.id"), "when": ("datetime", "$.when"), "ok": ("bool", "$.ok"), "score": ("real", "$.score"),
        "tags": ("dynamic", "$.tags"), "who": ("dynamic", "$.who"),
    }  # fmt: skip
    assert kinds(infer.from_json_schema(schema, flatten=True))["who_n"] == ("string", "$.who.n")


def test_json_lines_sample_takes_the_widest_type_each_field_needs() -> None:
    lines = [
        json.dumps({"id": 1, "v": 1, "t": "2024-01-01T00:00:00Z", "g": "12345678-1234-5678-1234-567812345678",
                    "s": "x", "o": {"a": 1}, "n": None, "odd name": True}),
        json.dumps({"id": 2**40, "v": 1.5, "t": "2024-01-02", "g": "12345678-1234-5678-1234-567812345679",
                    "s": 5, "o": {"a": 2}, "n": None, "odd name": False}),
    ]  # fmt: skip
    columns, count = infer.from_json_lines(lines)
    assert count == 2
    assert kinds(columns) == {
        "id": ("long", "$.id"), "v": ("real", "$.v"), "t": ("datetime", "$.t"), "g": ("guid", "$.g"),
        "s": ("string", "$.s"), "o": ("dynamic", "$.o"), "n": ("string", "$.n"), "odd_name": ("bool", "$['odd name']"),
    }  # fmt: skip


def test_csv_sample_by_ordinal() -> None:
    columns, count = infer.from_csv("When,Count,Ratio,Ok,Name\n2024-01-01 10:00,3,0.5,true,a\n2024-01-02 11:00,4,1,false,\n")
    assert count == 2
    assert [(c.name, c.type, c.ordinal) for c in columns] == [
        ("When", "datetime", 0), ("Count", "int", 1), ("Ratio", "real", 2), ("Ok", "bool", 3), ("Name", "string", 4),
    ]  # fmt: skip


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_init_from_an_avsc_writes_a_file_that_loads(tmp_path: Path) -> None:
    avsc = tmp_path / "orders.avsc"
    avsc.write_text(json.dumps(AVRO))
    target = tmp_path / "ingestion.yaml"
    code, out = invoke("init", "--config", str(target), "--from-schema", str(avsc), "--database", "Shop")
    assert code == 0, out
    assert re.search(r"price\s+decimal\s+\$\.price\s+\(avro bytes logicalType decimal\)", out), out
    config = load_config(target)
    route = config.routes[0]
    assert (route.topic, route.table, route.format, route.mapping, route.apply_mapping) == (
        "orders", "orders", "avro", "orders_avro", "client")
    assert config.database == "Shop" and config.tables["orders"].column_types["ref"] == "guid"


def test_init_from_a_sample_adds_to_an_existing_file_and_keeps_a_backup(tmp_path: Path) -> None:
    target = tmp_path / "ingestion.yaml"
    first = tmp_path / "events.jsonl"
    first.write_text('{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n')
    assert invoke("init", "--config", str(target), "--from-sample", str(first))[0] == 0
    second = tmp_path / "metrics.csv"
    second.write_text("host,cpu\nh1,0.5\n")
    code, out = invoke("init", "--config", str(target), "--from-sample", str(second), "--topic", "metrics-*")
    assert code == 0, out
    assert (tmp_path / "ingestion.yaml.bak").exists()
    config = load_config(target)
    assert [(r.topic, r.table, r.format) for r in config.routes] == [("events", "events", "json"), ("metrics-*", "metrics", "csv")]
    mapping = config.tables["metrics"].mappings["metrics_csv"]
    assert [(e.column, e.properties.ordinal) for e in mapping.columns] == [("host", 0), ("cpu", 1)]
    # The same table again is refused, and the file is left alone.
    before = target.read_text()
    code, out = invoke("init", "--config", str(target), "--from-sample", str(second))
    assert code == 2 and "already in the ingestion file" in out and target.read_text() == before


def test_init_dry_run_writes_nothing(tmp_path: Path) -> None:
    sample = tmp_path / "s.jsonl"
    sample.write_text('{"k": {"x": 1}}\n')
    target = tmp_path / "ingestion.yaml"
    code, out = invoke("init", "--config", str(target), "--from-sample", str(sample), "--flatten", "--dry-run")
    assert code == 0 and not target.exists()
    assert yaml.safe_load(out.split("would become:\n", 1)[1])["tables"]["s"]["columns"] == [{"name": "k_x", "type": "int"}]
