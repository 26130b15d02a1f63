"""Tests for device.sensors: door contact, debouncing, badge readers."""
