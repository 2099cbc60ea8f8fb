"""Ingest: raw AccessLink assets partitioned by user × day."""
