"""The simulator's HTTP routes, one module per route family.

Each family module exposes ``routes(sim) -> list[Endpoint]``: handlers bound to the shared
``SimulatorState``. ``SimulatorApp`` (``simulator/app.py``) assembles them into one router, in an order that
keeps the ``/v3/users/{user_id}`` catch-all behind the data routes.
"""
