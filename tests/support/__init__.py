"""Helpers the tests share: a real mosquitto on loopback, waiting with a deadline."""
