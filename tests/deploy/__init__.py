"""Deployment checks: broker config and ACL against a real mosquitto, systemd units, admin scripts."""
