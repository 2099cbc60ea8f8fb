"""Dagster definitions, one folder per concern; each folder's ``definitions.py`` builds its own."""
