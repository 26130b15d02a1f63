"""Who may use the web page and API: user accounts with roles, and API tokens."""
