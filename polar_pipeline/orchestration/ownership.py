"""Who answers for each group of assets: shown as owners in the Dagster UI, so a failed check or a stale
partition names the people to ask. Keyed by asset group name; one team per room of the design."""

from __future__ import annotations

OWNERS: dict[str, list[str]] = {
    "ingest": ["team:ingest"],  # the AccessLink client, raw tables, quarantine on arrival
    "staging": ["team:analytics-engineering"],  # typed views and their checks
    "marts": ["team:analytics-engineering"],  # the SQL marts and their data tests
    "analytics": ["team:analytics"],  # baselines, trends, risk, insights
    "serving": ["team:platform"],  # data health and the serving snapshot
}
