"""Read-only HTTP surface over the serving snapshot (never the live warehouse)."""
