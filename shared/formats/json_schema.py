"""JSON Schema records (Confluent wire format): JSON text after the schema id, validated against
the registered schema with the ``jsonschema`` library (the validator confluent-kafka's own
JSON deserializer uses)."""

from __future__ import annotations

from typing import Any

import orjson

from shared.errors import RecordError
from shared.formats.registry import RegisteredSchema, UnknownSchema


class JsonSchema:
    """A registered JSON Schema and the validator of its records."""

    def __init__(self, schema_id: str, validator: Any) -> None:
        self.schema_id = schema_id
        self.validator = validator

    def decode(self, payload: bytes | memoryview) -> Any:
        """The record's JSON value, checked against the schema."""
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise RecordError(f"schema id {self.schema_id}: invalid JSON: {exc}", stage="decode") from None
        error = next(iter(self.validator.iter_errors(value)), None)
        if error is not None:
            where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
            raise RecordError(
                f"schema id {self.schema_id}: does not match its JSON Schema at {where}: {error.message}",
                stage="decode",
                field=where,
            )
        return value


def parse_json_schema(schema: RegisteredSchema) -> JsonSchema:
    """A validator of a registered JSON Schema (:class:`UnknownSchema` when it is not one)."""
    from jsonschema import validators  # type: ignore[import-untyped]
    from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]

    if schema.kind != "JSON":
        raise UnknownSchema(f"schema id {schema.schema_id} is a {schema.kind} schema, the route's format is jsonschema")
    try:
        document = orjson.loads(schema.text)
        cls = validators.validator_for(document)
        cls.check_schema(document)
    except (orjson.JSONDecodeError, SchemaError) as exc:
        raise UnknownSchema(f"schema id {schema.schema_id} is not a valid JSON Schema: {exc}") from None
    return JsonSchema(schema.schema_id, cls(document))
