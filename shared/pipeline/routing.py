"""Topic -> route -> destination, with optional header routing restricted to an allow-list.

Exact topic names win over patterns; patterns (shell style, ``*`` catches the rest) are tried
in file order. A record whose topic matches no route is dead-lettered, never dropped.

Header routing uses the property names of ADX's own Event Hubs connection: ``Table``,
``Database``, ``Format``, ``IngestionMappingReference``. It applies only on routes that declare
``header_routing``; there a record may only go to the route's own target or to a target on that
allow-list, and anything else is dead-lettered.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from shared.config import IngestionConfig, Route, Target, effective_apply
from shared.errors import RecordError
from shared.pipeline.destination import Destination
from shared.pipeline.records import Record

ROUTING_HEADERS = ("Table", "Database", "Format", "IngestionMappingReference")


class Router:
    """Resolves each record to a :class:`Destination` (or raises :class:`RecordError`)."""

    def __init__(self, config: IngestionConfig) -> None:
        self.config = config
        self._exact: dict[str, int] = {}
        self._patterns: list[int] = []
        for index, route in enumerate(config.routes):
            if any(ch in route.topic for ch in "*?["):
                self._patterns.append(index)
            else:
                self._exact.setdefault(route.topic, index)
        self._by_topic: dict[str, int | None] = {}
        self._candidates: dict[int, list[Destination]] = {}

    def route_for(self, topic: str) -> Route | None:
        """The route of a topic, or None."""
        index = self._route_index(topic)
        return None if index is None else self.config.routes[index]

    def _route_index(self, topic: str) -> int | None:
        try:
            return self._by_topic[topic]
        except KeyError:
            pass
        index = self._exact.get(topic)
        if index is None:
            index = next((i for i in self._patterns if fnmatchcase(topic, self.config.routes[i].topic)), None)
        if len(self._by_topic) < 100_000:
            self._by_topic[topic] = index
        return index

    def destination(self, route: Route, target: Target | None = None) -> Destination:
        """The destination of a route, or of one of its allow-list targets."""
        table = target.table if target else route.table
        fmt = (target.format if target and target.format else None) or route.format
        if target is None:
            mapping = route.mapping
        elif target.mapping is not None:
            mapping = target.mapping
        else:
            mapping = route.mapping if target.table == route.table and fmt == route.format else None
        apply_mode = (target.apply_mapping if target else None) or route.apply_mapping
        return Destination(
            database=(target.database if target and target.database else None) or route.database or self.config.database,
            table=table,
            format=fmt,
            mapping=mapping,
            apply=effective_apply(self.config, table, mapping, apply_mode),
            ingestion=route.ingestion,
            dedup=route.dedup,
            validate=route.validate_records,
        )

    def _allowed(self, index: int) -> list[Destination]:
        candidates = self._candidates.get(index)
        if candidates is None:
            route = self.config.routes[index]
            candidates = [self.destination(route)] + [self.destination(route, t) for t in route.header_routing]
            self._candidates[index] = candidates
        return candidates

    def resolve(self, record: Record) -> tuple[Route, Destination]:
        """The route and destination of ``record``."""
        index = self._route_index(record.topic)
        if index is None:
            raise RecordError(f"no route for topic {record.topic!r} (add a route or a '*' route)", stage="route")
        route = self.config.routes[index]
        candidates = self._allowed(index)
        if not route.header_routing or not record.headers:
            return route, candidates[0]
        requested: dict[str, str] = {}
        for name in ROUTING_HEADERS:
            value = record.header(name)
            if value is None:
                continue
            try:
                requested[name] = value.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise RecordError(f"routing header {name} is not valid UTF-8", stage="route", field=name) from None
        if not requested:
            return route, candidates[0]
        for dest in candidates:
            if (
                requested.get("Table", dest.table) == dest.table
                and requested.get("Database", dest.database) == dest.database
                and requested.get("Format", dest.format).lower() == dest.format
                and requested.get("IngestionMappingReference", dest.mapping or "") == (dest.mapping or "")
            ):
                return route, dest
        wanted = ", ".join(f"{k}={v!r}" for k, v in requested.items())
        raise RecordError(
            f"header routing to {wanted} is not on the allow-list of route {route.topic!r}",
            stage="route",
            field=next(iter(requested)),
        )
