"""The audit trail beyond the events chain: side logs, signed checkpoints kept off the hub,
snapshot retention and the store's size."""
