"""kafka-adx core: one pipeline from Kafka / Event Hubs / files into Azure Data Explorer."""

__version__ = "0.1.0"
