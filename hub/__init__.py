"""The hub: ingest station messages, store them hash-chained, acknowledge, publish policies."""
