"""What the workbook's and the alerts' KQL names: the tables a query reads and the metric names
and attributes it filters on. The queries are written so that these can be found without a KQL
parser: a table starts a line (or follows ``(`` or ``let x =``) and is followed by a pipe, metric names
are compared to ``Name``, attributes are read as ``Properties["..."]``."""

from __future__ import annotations

import re

# Tables a query may read, each as documented (Azure Monitor Logs table reference):
# AppMetrics / AppTraces: workspace-based Application Insights (metrics from OpenTelemetry land in
# AppMetrics: Name, Sum, Min, Max, ItemCount, Properties; the host's logs in AppTraces: Message,
# OperationId, OperationName); FailedIngestion, SucceededIngestion, ADXIngestionBatching: the
# Microsoft.Kusto/clusters diagnostic categories FailedIngestion, SucceededIngestion,
# IngestionBatching (note the ADX prefix of the last table); AzureMetrics: platform metrics a
# diagnostic setting exports (Event Hubs' IncomingMessages).
APP_INSIGHTS_TABLES = frozenset({"AppMetrics", "AppTraces"})
ADX_DIAGNOSTIC_TABLES = frozenset({"FailedIngestion", "SucceededIngestion", "ADXIngestionBatching"})
PLATFORM_TABLES = frozenset({"AzureMetrics"})
KNOWN_TABLES = APP_INSIGHTS_TABLES | ADX_DIAGNOSTIC_TABLES | PLATFORM_TABLES

_TABLE = re.compile(r"(?m)(?:^|\(|\blet\s+\w+\s*=)[ \t]*([A-Za-z_]\w*)[ \t]*(?=\n?[ \t]*\|)")
_LET = re.compile(r"\blet\s+(\w+)\s*=")
_NAME_EQ = re.compile(r'\bName\s*==\s*"([^"]+)"')
_NAME_IN = re.compile(r"\bName\s+in\s*\(([^)]*)\)")
_PROPERTY = re.compile(r'Properties\["([^"]+)"\]')
_QUOTED = re.compile(r'"([^"]*)"')


def tables(query: str) -> set[str]:
    """Tables the query reads (names a ``let`` binds are not tables)."""
    bound = set(_LET.findall(query))
    return {name for name in _TABLE.findall(query) if name not in bound}


def metric_names(query: str) -> set[str]:
    """Metric names the query compares ``Name`` to."""
    names = set(_NAME_EQ.findall(query))
    for group in _NAME_IN.findall(query):
        names.update(_QUOTED.findall(group))
    return names


def attributes(query: str) -> set[str]:
    """Metric attributes the query reads from ``Properties``."""
    return set(_PROPERTY.findall(query))


def dotted_names(query: str) -> set[str]:
    """Every quoted ``messaging.*`` / ``kafka_adx.*`` name in the query (none may slip past the
    checks by being used some other way)."""
    return {s for s in _QUOTED.findall(query) if re.fullmatch(r"(messaging|kafka_adx|error)\.[\w.]+", s)}
