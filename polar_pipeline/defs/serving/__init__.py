"""Serving: the snapshot readers use, and the sensor that publishes it."""
