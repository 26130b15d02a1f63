"""Stations as the hub knows them: their door state, their enrolled signing keys."""
