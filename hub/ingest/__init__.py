"""Ingest: what stations publish, checked (signature, wire rules), stored in batches and acknowledged."""
