"""The main job, across the ingest and transform concerns."""
