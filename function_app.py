"""Azure Functions app (Python v2 model): thin wiring of the triggers to the kafka-adx pipeline.

Which triggers exist is decided by app settings when the worker indexes this file:
``EVENTHUB_NAME`` switches the Event Hubs trigger on, ``KAFKA_BROKERS`` the Kafka trigger.
A comma-separated ``EVENTHUB_NAME`` or ``KAFKA_TOPIC`` registers one function per name. A trigger
whose own settings are invalid is left out with its error logged; the others still register.
Everything else lives in :mod:`shared.functions` (``settings`` for the triggers, ``invocation`` for
one batch); see README.md ("The function app").
"""

# No "from __future__ import annotations": the worker inspects the annotations as objects.
import logging
import typing

import azure.functions as func

from shared.functions.invocation import handle_eventhub, handle_kafka
from shared.functions.settings import TriggerBinding, TriggerSettings

app = func.FunctionApp()
# Each trigger checks its own settings: a broken one is logged and left unregistered, so the
# others still run (settings all triggers share, RETRY_*, fail indexing with their error).
TRIGGERS, BROKEN = TriggerSettings.per_trigger()
for _switch, _error in BROKEN.items():
    logging.getLogger("kafka_adx.functions").error("the trigger switched on by %s is not registered: %s", _switch, _error)


def _register_eventhub(binding: TriggerBinding) -> None:
    @app.function_name(binding.function_name)
    @app.retry(**TRIGGERS.retry_kwargs())
    @app.event_hub_message_trigger(**TRIGGERS.eventhub_trigger_kwargs(binding))
    def ingest(events: typing.List[func.EventHubEvent], context: func.Context) -> None:  # noqa: UP006 - the worker's type check needs typing.List
        handle_eventhub(
            events,
            context,
            trigger=binding.function_name,
            event_hub=binding.source,
            header_encoding=TRIGGERS.eventhub_header_encoding,
            namespace=TRIGGERS.eventhub_namespace,
        )


def _register_kafka(binding: TriggerBinding) -> None:
    @app.function_name(binding.function_name)
    @app.retry(**TRIGGERS.retry_kwargs())
    @app.kafka_trigger(**TRIGGERS.kafka_trigger_kwargs(binding))
    def ingest(events: typing.List[func.KafkaEvent], context: func.Context) -> None:  # noqa: UP006 - the worker's type check needs typing.List
        handle_kafka(
            events,
            context,
            trigger=binding.function_name,
            data_type=TRIGGERS.kafka_data_type,
            brokers=TRIGGERS.kafka_brokers,
        )


for _binding in TRIGGERS.eventhub_bindings():
    _register_eventhub(_binding)
for _binding in TRIGGERS.kafka_bindings():
    _register_kafka(_binding)
