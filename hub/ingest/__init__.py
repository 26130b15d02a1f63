"""Ingest: what stations publish, checked (wire rules, signatures in worker processes), stored
in batches by one writer thread and acknowledged after the commit."""
