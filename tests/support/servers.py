"""Real servers on loopback for tests (the one implementation lives in ``polar_pipeline.devserver``)."""

from polar_pipeline.devserver import serve_asgi

__all__ = ["serve_asgi"]
