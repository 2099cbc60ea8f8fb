"""The dashboard: HTML pages at /dashboard over the read layer, charts drawn in the browser with plotly.

``routes.py`` (the routes), ``session.py`` (signing in with an API key), ``pages/`` (one builder per page,
from ``polar_api.read`` to ``model.PageData``), ``assets.py`` (plotly.js and our files, versioned and
gzipped), ``templates/`` and ``static/``. It reads the serving snapshot only, like every other route:
docs/dashboard.md.
"""
