"""Polar Flow account data export (the zip from account.polar.com) read into raw records.

``importer.read_export`` walks the archive one member at a time and turns the families the pipeline types
(training sessions, daily activity, sleep with its score, Nightly Recharge) into AccessLink v3-shaped
payloads, so the same staging views type them; ``importer.store_export`` writes them with
``source="export"``. See docs/polar-export.md. Nothing is imported here: ``summary`` must stay light.
"""
