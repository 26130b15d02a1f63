"""Stations as the hub knows them: the directory of names, kinds and sites, their door state,
their enrolled signing keys and the Ed25519 check, and the shredding flags (roster, hours)."""
