"""polar-flow pipeline: AccessLink sync, DuckDB warehouse and Dagster assets for Polar wearable data."""

__version__ = "0.1.0"
