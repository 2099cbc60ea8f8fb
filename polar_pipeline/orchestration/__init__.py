"""Dagster glue that is neither assets nor library: the user × day partitions, the resources, the event-log
storage and the Dagster home. ``defs/`` declares assets, checks, jobs and sensors with these; the library
packages (accesslink, simulator, warehouse, sqlmodels, ingest) never import Dagster.
"""
