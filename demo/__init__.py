"""The demo: hub, broker, print server and simulated stations on one machine, and the launchers of the
local mosquitto and cupsd it (and the tests) run."""
