"""Station logic: one module per station kind, pure state machines driven by the agent."""
