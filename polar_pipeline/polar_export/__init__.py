"""Polar Flow account data export (the zip from account.polar.com) read into raw records.

``read_export`` walks the archive one member at a time and turns the families the pipeline types (training
sessions, daily activity, sleep with its score, Nightly Recharge) into AccessLink v3-shaped payloads, so the
same staging views type them; ``store_export`` writes them with ``source="export"``. See docs/polar-export.md.
"""

from polar_pipeline.polar_export.importer import ExportContents, ImportSummary, read_export, store_export

__all__ = ["ExportContents", "ImportSummary", "read_export", "store_export"]
