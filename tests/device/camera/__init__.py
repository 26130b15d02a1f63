"""Tests for device.camera: the stand-in and the picamera2 adapter off the Pi."""
