"""Alerts: evaluated after every publish, delivered (and retried) every minute, a weekly digest."""
