"""Kafka clients of the command line: ``connection`` (librdkafka settings and credentials, and the
protocol/mechanism spellings the function app shares), ``consumer`` (``kafka-adx consume``) and
``producer`` (``kafka-adx produce``)."""
