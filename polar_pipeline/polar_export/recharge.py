"""Nightly Recharge (``nightly_recovery_*.json``, all nights in one array) as AccessLink v3 payloads.

HRV (RMSSD), beat-to-beat interval and the status fields map directly; overnight heart rate and breathing rate
are derived from the mean intervals (60000 / ms). ``nightly_recovery_blob_*`` (the 5-minute series) is another
family and is not read here.
"""

from __future__ import annotations

import json
from typing import Any

from polar_pipeline.polar_export.values import RecordError, iso_date, number, whole_number, without_none
from polar_pipeline.warehouse.raw_store import RawRecord

STREAM = "nightly_recharge"
PREFIX = "nightly_recovery_"
BLOB_PREFIX = "nightly_recovery_blob_"


def is_recharge(basename: str) -> bool:
    return basename.startswith(PREFIX) and not basename.startswith(BLOB_PREFIX) and basename.endswith(".json")


def recharge_record(entry: Any, member: str) -> RawRecord:
    if not isinstance(entry, dict):
        raise RecordError("nightly recovery: expected a JSON object per night")
    night = iso_date(entry.get("night"))
    if night is None:
        raise RecordError(f"nightly recovery: no usable night ({entry.get('night')!r})")
    rri = number(entry.get("meanNightlyRecoveryRri"))
    breath_interval = number(entry.get("meanNightlyRecoveryRespirationInterval"))
    payload = without_none(
        {
            "date": night.isoformat(),
            "heart_rate_avg": round(60000 / rri) if rri else None,
            "beat_to_beat_avg": whole_number(rri),
            "heart_rate_variability_avg": whole_number(entry.get("meanNightlyRecoveryRmssd")),
            "breathing_rate_avg": round(60000 / breath_interval, 1) if breath_interval else None,
            "nightly_recharge_status": whole_number(entry.get("recoveryIndicator")),
            "ans_charge": number(entry.get("ansStatus")),
            "ans_charge_status": whole_number(entry.get("ansRate")),
            "export_member": member,
            "export_summary": entry,
        }
    )
    return RawRecord(night.isoformat(), night, json.dumps(payload, ensure_ascii=False))
