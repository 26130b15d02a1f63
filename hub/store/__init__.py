"""The store: the database engine and schema, migrations, the hash chain and how times are written."""
