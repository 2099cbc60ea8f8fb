"""The daily refresh schedule and the sensors that keep every user synced: new users, retries, isolation."""
