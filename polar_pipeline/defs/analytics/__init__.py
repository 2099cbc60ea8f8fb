"""The analytics assets: ``polar_pipeline/analytics`` functions as user × day ``analytics.*`` tables."""
