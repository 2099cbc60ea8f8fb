"""Requests: the sensor that turns API sync and pattern-detection requests into runs and reports back."""
