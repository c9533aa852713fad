"""The ingestion file: tables, mappings (in ADX's own syntax) and routes, validated by pydantic.

Every error names the file and the field path. Every name that can reach KQL is restricted to
``[A-Za-z0-9_.-]`` so that no configuration value can inject KQL.
"""

from __future__ import annotations

import logging
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.errors import ConfigError
from shared.mapping.types import AdxType as AdxType  # re-exported: the type names of a column
from shared.mapping.types import normalise_type_name

log = logging.getLogger("kafka_adx.config")

NAME_PATTERN = r"^[A-Za-z0-9_.\-]+$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, min_length=1, max_length=1024)]
"""A table, column, database or mapping name: only characters that cannot inject KQL."""

Format = Literal["csv", "tsv", "psv", "scsv", "sohsv", "json", "multijson", "txt", "raw", "avro", "jsonschema"]
ApplyMode = Literal["server", "client"]
IngestionMode = Literal["queued", "streaming"]
MappingRef = Literal["file", "external"]
Transform = Literal[
    "DateTimeFromUnixSeconds",
    "DateTimeFromUnixMilliseconds",
    "DateTimeFromUnixMicroseconds",
    "DateTimeFromUnixNanoseconds",
    "SourceLocation",
    "SourceLineNumber",
]
MetadataSource = Annotated[str, StringConstraints(pattern=r"^(key|topic|partition|offset|timestamp|header:.+)$")]

DELIMITERS: dict[str, str] = {"csv": ",", "tsv": "\t", "psv": "|", "scsv": ";", "sohsv": "\x01"}
"""Field delimiter of each delimited format."""

JSON_FORMATS = frozenset({"json", "multijson"})
TEXT_FORMATS = frozenset({"txt", "raw"})
SCHEMA_FORMATS = frozenset({"avro", "jsonschema"})
"""Formats whose records name a schema in a registry (Confluent wire format, or the Azure Schema
Registry's ``avro/binary+<id>`` content type). ADX cannot read them, so kafka-adx decodes them and
always applies the mapping itself (``apply_mapping: client``, a ``json`` mapping over the
decoded value): see docs/formats.md."""


def _client_for_schema_formats(data: Any) -> Any:
    """Before validation: a route or target in a schema format applies its mapping client side
    unless it says otherwise (and :meth:`IngestionConfig._check_target` refuses ``server``)."""
    if isinstance(data, dict) and data.get("format") in SCHEMA_FORMATS and data.get("apply_mapping") is None:
        return {**data, "apply_mapping": "client"}
    return data

_Frozen = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Column(BaseModel):
    """A table column."""

    model_config = _Frozen

    name: Name
    """Column name."""
    type: AdxType
    """ADX scalar type of the column."""

    @field_validator("type", mode="before")
    @classmethod
    def _normalise_type(cls, value: Any) -> Any:
        # ADX's other names for a type (int64, double, uuid, ...) are accepted as the canonical one.
        return normalise_type_name(value) if isinstance(value, str) else value


class MappingProperties(BaseModel):
    """The ``Properties`` of one column mapping, as ADX spells them.

    Exactly one source: ``Path`` (JSON), ``Ordinal`` (CSV), ``ConstValue``, a source-only
    ``Transform`` (SourceLocation / SourceLineNumber), or ``Metadata`` (client mapping only:
    ``key``, ``topic``, ``partition``, ``offset``, ``timestamp`` or ``header:<name>``).
    """

    model_config = _Frozen

    path: str | None = Field(default=None, validation_alias=AliasChoices("Path", "path"))
    """JSON path such as ``$.a.b[0]`` or ``$['odd name']``."""
    ordinal: int | None = Field(default=None, ge=0, validation_alias=AliasChoices("Ordinal", "ordinal"))
    """0-based field index of a delimited record."""
    const_value: str | None = Field(default=None, validation_alias=AliasChoices("ConstValue", "const_value"))
    """A constant value for every row."""
    transform: Transform | None = Field(default=None, validation_alias=AliasChoices("Transform", "transform"))
    """ADX mapping transform."""
    metadata: MetadataSource | None = Field(default=None, validation_alias=AliasChoices("Metadata", "metadata"))
    """Record metadata as the source (client-side mapping only)."""

    @field_validator("ordinal", mode="before")
    @classmethod
    def _ordinal_from_string(cls, value: Any) -> Any:
        # ADX writes ordinals as strings ("Ordinal": "0").
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> MappingProperties:
        sources = [
            name
            for name, present in (
                ("Path", self.path is not None),
                ("Ordinal", self.ordinal is not None),
                ("ConstValue", self.const_value is not None),
                ("Metadata", self.metadata is not None),
                ("Transform", self.transform in ("SourceLocation", "SourceLineNumber")),
            )
            if present
        ]
        if len(sources) != 1:
            raise ValueError(
                "a column mapping needs exactly one source among Path, Ordinal, ConstValue, Metadata "
                f"or Transform SourceLocation/SourceLineNumber; got {sources or 'none'}"
            )
        if self.path is not None:
            from shared.mapping.jsonpath import parse_path

            parse_path(self.path)  # raises ValueError with the reason
        return self

    @property
    def uses_metadata(self) -> bool:
        """Whether this mapping reads record metadata (only possible client-side)."""
        return self.metadata is not None


_LEGACY_SOURCE_KEYS = {"path": "Path", "ordinal": "Ordinal", "constvalue": "ConstValue", "transform": "Transform"}


def normalise_legacy_entry(entry: Any) -> dict[str, Any] | None:
    """The ``{column, Properties}`` form of a mapping entry in ADX's legacy syntax
    (``{"Name": "StartTime", "datatype": "datetime", "Ordinal": 0}``: the source at the top
    level, as the Kafka tutorial writes it), or None when ``entry`` is not in that syntax.

    ``datatype`` is dropped: ADX only uses it to create a missing column, and the file's column
    type is what kafka-adx converts to."""
    if not isinstance(entry, dict) or any(str(k).lower() == "properties" for k in entry):
        return None
    sources = {_LEGACY_SOURCE_KEYS[str(k).lower()]: v for k, v in entry.items() if str(k).lower() in _LEGACY_SOURCE_KEYS}
    if not sources:
        return None
    column = next((v for k, v in entry.items() if str(k).lower() in ("column", "name")), None)
    # Ordinals become strings, as ADX's current syntax (and `kafka-adx kql`) writes them.
    props = {k: str(v) if k == "Ordinal" and isinstance(v, int) else v for k, v in sources.items()}
    return {"column": column, "Properties": props}


class ColumnMapping(BaseModel):
    """One entry of an ADX ingestion mapping: ``{"column": ..., "Properties": {...}}``; the
    legacy syntax (``Name``/``datatype``/``Ordinal`` or ``Path`` at the top level) is read too,
    and :func:`parse_config` warns with the normalised form."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    column: Name = Field(validation_alias=AliasChoices("column", "Column", "Name", "name"))
    """Target column."""
    properties: MappingProperties = Field(validation_alias=AliasChoices("Properties", "properties"))
    """Where the value comes from."""

    @model_validator(mode="before")
    @classmethod
    def _legacy_syntax(cls, value: Any) -> Any:
        # Six "Field required" errors for the tutorial's mapping would hide what is meant.
        normalised = normalise_legacy_entry(value)
        return value if normalised is None else normalised


class Mapping(BaseModel):
    """A named ingestion mapping of a table (``kind: csv`` for delimited formats, ``json``)."""

    model_config = _Frozen

    kind: Literal["csv", "json"]
    """ADX mapping kind."""
    columns: tuple[ColumnMapping, ...] = Field(min_length=1)
    """The column mappings, in ADX syntax."""
    source_fields: int | None = Field(default=None, ge=1)
    """``csv`` mappings only: how many fields every source record has (this project's option; not
    part of the mapping ADX stores). A record with any other count is dead-lettered: ADX fails a
    whole blob whose rows disagree on their field count (``Stream_WrongNumberOfFields``), and a
    record wider or narrower than expected means the producer's shape changed, so the ordinals
    would read the wrong fields. Default: the highest ``Ordinal`` + 1; set it when the mapping
    reads only some of the fields (ordinals 0, 1, 3 and 12 of a 22-field row: ``source_fields: 22``)."""

    @field_validator("source_fields")
    @classmethod
    def _source_fields_fit(cls, value: int | None, info: ValidationInfo) -> int | None:
        # Declared after kind and columns, so both are in info.data when they were valid: the
        # error then points at source_fields itself.
        if value is None:
            return value
        if info.data.get("kind") == "json":
            raise ValueError("only a csv mapping has source_fields (a JSON record has no field count)")
        columns: tuple[ColumnMapping, ...] = info.data.get("columns", ())
        ordinals = [entry.properties.ordinal for entry in columns if entry.properties.ordinal is not None]
        if ordinals and max(ordinals) >= value:
            raise ValueError(
                f"{value} fields cannot hold Ordinal {max(ordinals)} (ordinals count from 0: at least {max(ordinals) + 1})"
            )
        return value

    @model_validator(mode="after")
    def _sources_fit_kind(self) -> Mapping:
        for index, entry in enumerate(self.columns):
            props = entry.properties
            if self.kind == "csv" and props.path is not None:
                raise ValueError(f"columns[{index}] ({entry.column}): a csv mapping uses Ordinal, not Path")
            if self.kind == "json" and props.ordinal is not None:
                raise ValueError(f"columns[{index}] ({entry.column}): a json mapping uses Path, not Ordinal")
        return self

    @property
    def uses_metadata(self) -> bool:
        """Whether any column reads record metadata."""
        return any(entry.properties.uses_metadata for entry in self.columns)

    def metadata_columns(self) -> dict[str, str]:
        """Metadata source (``topic``, ``offset``...) to the column this mapping fills from it."""
        return {e.properties.metadata: e.column for e in self.columns if e.properties.metadata is not None}

    @property
    def expected_fields(self) -> int | None:
        """The field count every delimited record must have: ``source_fields``, else the highest
        ordinal + 1; None when the mapping reads no ordinal and declares no width."""
        if self.source_fields is not None:
            return self.source_fields
        ordinals = [entry.properties.ordinal for entry in self.columns if entry.properties.ordinal is not None]
        return max(ordinals) + 1 if ordinals else None


POSITION_SOURCES = ("topic", "partition", "offset")
"""The metadata that identifies a record's source position: the key of a dedup view."""


class DedupView(BaseModel):
    """A deduplicating materialized view of a table, keyed by the source position (the columns
    its mappings fill from ``Metadata: topic``, ``partition`` and ``offset``): one row per
    record however often transport redelivered it (see docs/exactly-once.md)."""

    model_config = _Frozen

    name: Name | None = None
    """View name (default: ``<table>_Dedup``); must not be the name of a table."""
    lookback: str | None = Field(default="3.00:00:00", pattern=r"^(\d+\.)?\d{2}:\d{2}:\d{2}$")
    """How far back (by ingestion time) a new record is compared with the view's records: ADX's
    ``lookback``. Redeliveries come within minutes to hours; the default matches the 3 days the
    ingest-by tags are kept. ``null``: compare with everything (correct for any delay, and the
    costliest materialization)."""
    retention: str = Field(default="365.00:00:00", pattern=r"^(\d+\.)?\d{2}:\d{2}:\d{2}$")
    """SoftDeletePeriod of the view's retention policy: the view is a second copy of the data,
    so it is bounded on its own rather than inheriting the database's (often unlimited) one."""


BATCHING_FIELDS = ("batching_max_delay", "batching_max_items", "batching_max_raw_size_mb")
"""The table fields that make up its ADX ingestion batching policy."""


class Table(BaseModel):
    """A destination table: its columns and its named mappings."""

    model_config = _Frozen

    external: bool = False
    """The table lives only in the cluster (created by hand, or by a Kafka Connect sink's
    setup): ``kafka-adx kql`` never creates or alters it, nor its mappings and policies. Its
    ``columns`` are optional (when given they are used for validation, client-side mapping and
    the local mode, never sent to ADX); it declares no mappings and no policy (routes name its
    mappings with ``mapping_ref: external``)."""
    columns: tuple[Column, ...] = ()
    """Columns in table order (CSV rows without a mapping map by this order). Required unless
    the table is ``external``."""
    mappings: dict[Name, Mapping] = Field(default_factory=dict)
    """Named ingestion mappings, created in ADX by ``kafka-adx kql`` (only when missing; see
    docs/adx.md)."""
    batching_max_delay: str = Field(default="00:00:30", pattern=r"^\d{2}:\d{2}:\d{2}$")
    """ADX ingestion batching policy ``MaximumBatchingTimeSpan`` (``hh:mm:ss``): a batch is
    sealed this long after its first blob at the latest (near real time by default; ADX's own
    default is 5 minutes). ADX only; the local mode ignores the batching policy."""
    batching_max_items: int = Field(default=500, gt=0)
    """ADX ingestion batching policy ``MaximumNumberOfItems``: a batch is sealed once it holds
    this many blobs (each kafka-adx batch is one blob). ADX's default, 500."""
    batching_max_raw_size_mb: int = Field(default=1024, gt=0)
    """ADX ingestion batching policy ``MaximumRawDataSizeMB``: a batch is sealed once its
    uncompressed data reaches this many MB. ADX's default, 1024."""
    dedup_view: DedupView | None = None
    """Opt-in deduplicating view keyed by source position: ``true``, a view name, or
    ``{name, lookback, retention}``. Needs mappings that fill position columns from
    ``Metadata: topic``, ``partition`` and ``offset``; every route to the table must use one."""

    @field_validator("dedup_view", mode="before")
    @classmethod
    def _dedup_view_shorthand(cls, value: Any) -> Any:
        # `dedup_view: true` and `dedup_view: MyView` are the common spellings.
        if value is True:
            return {}
        if value is False:
            return None
        if isinstance(value, str):
            return {"name": value}
        return value

    @model_validator(mode="after")
    def _external_owns_nothing(self) -> Table:
        # kql emits nothing for an external table: a field that would only reach ADX through
        # kql is refused rather than silently dropped.
        if not self.external:
            if not self.columns:
                raise ValueError(
                    "columns: a table needs at least one column (a table that lives only in the cluster: "
                    "external: true)"
                )
            return self
        owned = [name for name in BATCHING_FIELDS if name in self.model_fields_set]
        owned += ["mappings"] if self.mappings else []
        owned += ["dedup_view"] if self.dedup_view is not None else []
        if owned:
            raise ValueError(
                f"an external table is not created or altered by kafka-adx kql, so it takes no {', '.join(owned)} "
                "(name its mappings on the routes with mapping_ref: external; set its policies in the cluster)"
            )
        return self

    @model_validator(mode="after")
    def _unique_columns(self) -> Table:
        seen: set[str] = set()
        for column in self.columns:
            if column.name in seen:
                raise ValueError(f"column {column.name!r} is declared twice")
            seen.add(column.name)
        names = {c.name for c in self.columns}
        for mapping_name, mapping in self.mappings.items():
            for entry in mapping.columns:
                if entry.column not in names:
                    raise ValueError(f"mapping {mapping_name!r} maps unknown column {entry.column!r}")
        if self.dedup_view is not None:
            _ = self.dedup_key  # raises ValueError naming the missing or ambiguous position column
        return self

    @cached_property
    def dedup_key(self) -> tuple[str, str, str]:
        """The (topic, partition, offset) columns of the dedup view: the columns the table's
        mappings fill from that metadata. ValueError when one is missing or ambiguous."""
        found: dict[str, set[str]] = {source: set() for source in POSITION_SOURCES}
        for mapping in self.mappings.values():
            for source, column in mapping.metadata_columns().items():
                if source in found:
                    found[source].add(column)
        key: list[str] = []
        for source in POSITION_SOURCES:
            columns = sorted(found[source])
            if not columns:
                raise ValueError(
                    f"dedup_view: no mapping of this table fills a column from Metadata: {source} "
                    "(the view is keyed by topic, partition and offset)"
                )
            if len(columns) > 1:
                raise ValueError(
                    f"dedup_view: mappings fill different columns from Metadata: {source} "
                    f"({', '.join(columns)}); the view needs one"
                )
            key.append(columns[0])
        return key[0], key[1], key[2]

    def dedup_view_name(self, table_name: str) -> str | None:
        """The name of this table's dedup view, or None when it has none."""
        if self.dedup_view is None:
            return None
        return self.dedup_view.name or f"{table_name}_Dedup"

    @cached_property
    def column_types(self) -> dict[str, str]:
        """Column name to ADX type."""
        return {c.name: c.type for c in self.columns}


class Target(BaseModel):
    """A destination a record's headers may choose (header routing allow-list entry)."""

    model_config = _Frozen

    table: Name
    """Destination table."""
    database: Name | None = None
    """Destination database (default: the route's)."""
    format: Format | None = None
    """Data format (default: the route's)."""
    mapping: Name | None = None
    """Mapping name (default: none, or the route's when the table is the same)."""
    mapping_ref: MappingRef = "file"
    """``external``: ``mapping`` lives only in the cluster (as on :attr:`Route.mapping_ref`)."""
    apply_mapping: ApplyMode | None = None
    """Where the mapping is applied (default: as the route; ``client`` for ``avro`` and
    ``jsonschema``)."""

    _schema_formats_client = model_validator(mode="before")(_client_for_schema_formats)


class Route(BaseModel):
    """Where records of a topic (or event hub) go and how they are handled."""

    model_config = _Frozen

    topic: str = Field(min_length=1)
    """Topic or event hub name; shell-style patterns allowed; ``*`` catches the rest."""
    database: Name | None = None
    """Destination database (default: the file's ``database``)."""
    table: Name
    """Destination table."""
    format: Format
    """Data format of the record values."""
    mapping: Name | None = None
    """Name of one of the table's mappings (none: CSV by ordinal, JSON by column name)."""
    mapping_ref: MappingRef = "file"
    """``file``: ``mapping`` is declared under the table's ``mappings``. ``external``: it lives
    only in the cluster (e.g. the mapping a Kafka Connect sink uses); ADX applies it by name
    (server side), kafka-adx neither creates nor alters it and cannot check records against it."""
    apply_mapping: ApplyMode | None = None
    """``server`` (ADX applies the named mapping) or ``client`` (the function does, and sends
    CSV rows). Default: client when the mapping reads metadata or the format is ``avro`` or
    ``jsonschema`` (which only kafka-adx decodes), else server."""
    ingestion: IngestionMode = "queued"
    """Queued (batched) or streaming ingestion."""
    dedup: bool = False
    """Tag extents with the batch id and skip a batch ADX already has (ingest-by tags)."""
    validate_records: bool = Field(default=True, validation_alias=AliasChoices("validate", "validate_records"))
    """Check each record (JSON parses, CSV field count, types) and dead-letter the bad ones."""
    header_routing: tuple[Target, ...] = ()
    """Allow-list for routing by the ``Table``/``Database``/``Format``/``IngestionMappingReference``
    headers. Empty: those headers are ignored."""

    _schema_formats_client = model_validator(mode="before")(_client_for_schema_formats)


class Limits(BaseModel):
    """Size limits."""

    model_config = _Frozen

    max_record_bytes: int = Field(default=1_048_576, gt=0)
    """A record larger than this is dead-lettered as oversize."""
    max_batch_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    """Uncompressed bytes after which a batch is sealed and sent."""
    max_batch_records: int = Field(default=100_000, gt=0)
    """Records after which a batch is sealed and sent."""
    gzip_level: int = Field(default=1, ge=0, le=9)
    """gzip compression level of batches (1: fast, ADX decompresses anything)."""


_WILDCARDS = "*?["
"""The characters that make a route's topic a pattern (as the router reads it)."""


def _literal_prefix(pattern: str) -> str:
    """The part of a topic pattern before its first wildcard."""
    cut = min((i for i in map(pattern.find, _WILDCARDS) if i >= 0), default=len(pattern))
    return pattern[:cut]


def _check_reachable(routes: tuple[Route, ...]) -> None:
    """Refuse a route no record can ever take: an exact topic listed twice, or a pattern that an
    earlier pattern provably covers (the same pattern, or ``prefix*`` before a pattern starting
    with that prefix, ``*`` before anything). The router takes the first match, so such a route
    silently sends its topics to the earlier route's table."""
    exact: dict[str, int] = {}
    patterns: list[tuple[int, str]] = []
    for index, route in enumerate(routes):
        topic = route.topic
        if not any(ch in topic for ch in _WILDCARDS):
            if topic in exact:
                raise ValueError(
                    f"routes[{index}] (topic {topic!r}) can never match: routes[{exact[topic]}] names the same "
                    "topic and takes its records; remove one"
                )
            exact[topic] = index
            continue
        for earlier, pattern in patterns:
            prefix = pattern[:-1]
            covers = pattern == topic or (
                pattern.endswith("*") and not any(ch in prefix for ch in _WILDCARDS)
                and _literal_prefix(topic).startswith(prefix)
            )  # fmt: skip
            if covers:
                raise ValueError(
                    f"routes[{index}] (topic {topic!r}) can never match: routes[{earlier}] (topic {pattern!r}) "
                    "comes first and matches every topic it would (patterns are tried in file order: "
                    "put the narrower pattern first)"
                )
        patterns.append((index, topic))


class IngestionConfig(BaseModel):
    """The whole ingestion file."""

    model_config = _Frozen

    database: Name
    """Default database of every route."""
    tables: dict[Name, Table] = Field(min_length=1)
    """Tables by name."""
    routes: tuple[Route, ...] = Field(min_length=1)
    """Routes, matched in order: exact topic names first, then patterns in file order."""
    limits: Limits = Field(default_factory=Limits)
    """Size limits."""

    @model_validator(mode="after")
    def _check_references(self) -> IngestionConfig:
        for table_name, table in self.tables.items():
            view = table.dedup_view_name(table_name)
            if view is not None and view in self.tables:
                raise ValueError(
                    f"tables.{table_name}.dedup_view: view name {view!r} is also a table (ADX names must not clash)"
                )
        _check_reachable(self.routes)
        for index, route in enumerate(self.routes):
            where = f"routes[{index}] (topic {route.topic!r})"
            self._check_target(where, route.table, route.format, route.mapping, route.apply_mapping, route.mapping_ref)
            self._check_position_columns(where, route.table, route.mapping)
            for t_index, target in enumerate(route.header_routing):
                fmt = target.format or route.format
                self._check_target(
                    f"{where}.header_routing[{t_index}]",
                    target.table,
                    fmt,
                    target.mapping,
                    target.apply_mapping or route.apply_mapping,
                    target.mapping_ref,
                )
                # The mapping a target gets when it names none, as routing resolves it.
                mapping = target.mapping
                if mapping is None and target.table == route.table and fmt == route.format:
                    mapping = route.mapping
                self._check_position_columns(f"{where}.header_routing[{t_index}]", target.table, mapping)
        return self

    def _check_position_columns(self, where: str, table_name: str, mapping_name: str | None) -> None:
        # A record written without its position would land with a null key, and the dedup view
        # would collapse all such records into one row: refuse the route instead.
        table = self.tables[table_name]
        if table.dedup_view is None:
            return
        declared = table.mappings.get(mapping_name) if mapping_name else None
        filled = declared.metadata_columns() if declared is not None else {}  # an external mapping fills none
        for source, column in zip(POSITION_SOURCES, table.dedup_key, strict=True):
            if filled.get(source) != column:
                problem = (
                    f"mapping {mapping_name!r} does not fill" if mapping_name else "it names no mapping to fill"
                )
                raise ValueError(
                    f"{where}: table {table_name!r} has a dedup_view keyed by {', '.join(table.dedup_key)}, "
                    f"but {problem} {column} from Metadata: {source}"
                )

    def _check_target(
        self, where: str, table_name: str, fmt: str, mapping_name: str | None, apply: str | None,
        mapping_ref: str = "file",
    ) -> None:
        table = self.tables.get(table_name)
        if table is None:
            raise ValueError(
                f"{where}: table {table_name!r} is not declared under tables (declare it; a table that lives only "
                f"in the cluster: tables.{table_name}: {{external: true}})"
            )
        if fmt in SCHEMA_FORMATS and apply == "server":
            raise ValueError(
                f"{where}: format {fmt!r} is decoded by kafka-adx (ADX cannot read it), so apply_mapping must be client"
            )
        if mapping_name is None:
            if mapping_ref == "external":
                raise ValueError(f"{where}: mapping_ref: external needs the mapping's name (mapping: <name>)")
            if not table.columns and (apply == "client"):
                raise ValueError(f"{where}: apply_mapping: client needs the table's columns (table {table_name!r} lists none)")
            return
        if fmt in TEXT_FORMATS:
            raise ValueError(f"{where}: format {fmt!r} takes no mapping")
        mapping = table.mappings.get(mapping_name)
        if mapping_ref == "external":
            if mapping is not None:
                raise ValueError(
                    f"{where}: mapping {mapping_name!r} is declared under tables.{table_name}.mappings, so the file owns "
                    "it: drop mapping_ref: external, or the declaration to leave the mapping to the cluster"
                )
            if apply == "client":
                raise ValueError(
                    f"{where}: mapping {mapping_name!r} is external (only the cluster knows it): ADX applies it, "
                    "so apply_mapping must be server"
                )
            return
        if mapping is None:
            known = ", ".join(sorted(table.mappings)) or "none"
            raise ValueError(
                f"{where}: table {table_name!r} has no mapping {mapping_name!r} (it has: {known}; a mapping that "
                "lives only in the cluster: mapping_ref: external on the route)"
            )
        expected = "json" if fmt in JSON_FORMATS or fmt in SCHEMA_FORMATS else "csv"
        if mapping.kind != expected:
            raise ValueError(f"{where}: format {fmt!r} needs a {expected} mapping, {mapping_name!r} is {mapping.kind}")
        if mapping.uses_metadata and apply == "server":
            raise ValueError(
                f"{where}: mapping {mapping_name!r} reads record metadata, which only apply_mapping: client can do"
            )

    def table(self, name: str) -> Table:
        """The table called ``name`` (KeyError if none)."""
        return self.tables[name]

    def declared_mapping(self, table: str, mapping: str | None) -> Mapping | None:
        """The mapping ``mapping`` of ``table`` as the file declares it; None for no mapping and
        for an external one (``mapping_ref: external``: it lives only in the cluster)."""
        if mapping is None:
            return None
        return self.tables[table].mappings.get(mapping)

    def external_mappings(self) -> dict[str, set[str]]:
        """Table name -> the mappings routes (and header-routing targets) use by name without
        declaring them (``mapping_ref: external``)."""
        out: dict[str, set[str]] = {}
        for route in self.routes:
            if route.mapping is not None and route.mapping_ref == "external":
                out.setdefault(route.table, set()).add(route.mapping)
            for target in route.header_routing:
                if target.mapping is not None and target.mapping_ref == "external":
                    out.setdefault(target.table, set()).add(target.mapping)
        return out

    def is_external_mapping(self, table: str, mapping: str | None) -> bool:
        """Whether ``mapping`` is a name the file uses but does not declare (``mapping_ref:
        external``): ADX applies it by name, and its shape is unknown here."""
        return mapping is not None and mapping not in self.tables[table].mappings


def effective_apply(config: IngestionConfig, table: str, mapping: str | None, apply: ApplyMode | None) -> ApplyMode:
    """Where a mapping is applied: explicit choice, else client when it reads metadata (an
    external mapping, which the file does not declare, is always applied by ADX)."""
    if apply is not None:
        return apply
    declared = config.declared_mapping(table, mapping)
    if declared is not None and declared.uses_metadata:
        return "client"
    return "server"


def _format_location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _format_validation_error(source: str, error: ValidationError) -> str:
    items = error.errors()
    # pydantic also reports a list as "too short" when its only item failed: keep the item's error.
    items = [
        item
        for item in items
        if not (
            item["type"] == "too_short"
            and any(len(o["loc"]) > len(item["loc"]) and o["loc"][: len(item["loc"])] == item["loc"] for o in items)
        )
    ]
    lines = [f"{source}: {len(items)} error(s) in the ingestion file"]
    for item in items:
        message = re.sub(r"^Value error, ", "", item["msg"])
        where = f"{_format_location(item['loc'])}: " if item["loc"] else ""
        lines.append(f"  {source}: {where}{message}")
    return "\n".join(lines)


def legacy_mapping_hints(data: Any, source: str = "<config>") -> list[str]:
    """One hint per mapping entry written in ADX's legacy syntax, naming the file, the field
    path and the normalised form (the entry is accepted; the hint says how to write it)."""
    hints: list[str] = []
    tables = data.get("tables") if isinstance(data, dict) else None
    for table_name, table in (tables or {}).items() if isinstance(tables, dict) else ():
        mappings = table.get("mappings") if isinstance(table, dict) else None
        for mapping_name, mapping in (mappings or {}).items() if isinstance(mappings, dict) else ():
            entries = mapping.get("columns") if isinstance(mapping, dict) else None
            for index, entry in enumerate(entries) if isinstance(entries, list) else ():
                normalised = normalise_legacy_entry(entry)
                if normalised is None:
                    continue
                props = ", ".join(f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {v}"
                                  for k, v in normalised["Properties"].items())
                dropped = " (datatype is not used: the table's column type applies)" if any(
                    str(k).lower() == "datatype" for k in entry) else ""
                hints.append(
                    f"{source}: tables.{table_name}.mappings.{mapping_name}.columns[{index}]: legacy mapping syntax "
                    f"(the source at the top level), read as {{column: {normalised['column']}, Properties: {{{props}}}}}; "
                    f"write it that way{dropped}"
                )
    return hints


def parse_config(data: Any, source: str = "<config>") -> IngestionConfig:
    """Validate already-loaded YAML/JSON data; raise :class:`ConfigError` naming each field.
    Mapping entries in ADX's legacy syntax are accepted with a warning (logger
    ``kafka_adx.config``) naming the file, the field and the normalised form."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the ingestion file must be a mapping with tables and routes")
    for hint in legacy_mapping_hints(data, source):
        log.warning("%s", hint)
    try:
        return IngestionConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(source, exc)) from None


def load_config(path: str | Path) -> IngestionConfig:
    """Read and validate an ingestion file (YAML)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: ingestion file not found (set INGESTION_CONFIG or pass --config)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the ingestion file: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_config(data, str(path))
