"""The embedded durable engine: SQLite in WAL mode (why: benchmarks/README.md, "Engine")."""
