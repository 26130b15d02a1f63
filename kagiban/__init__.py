"""kagiban: what device and hub share (wire protocol, config loading) and the command line."""
