"""The MCP server: the read layer's answers as tools for a model, over stdio and streamable HTTP.

Every tool answers from the same functions as the REST routes (``polar_api.read``), on one generation of
the serving snapshot per call, so a tool and its route cannot drift apart. ``server.build_server`` makes the
server; ``access`` decides whose data a call may read (an API key over HTTP, ``--user`` over stdio);
``answers`` adds to each answer how current its data is. docs/mcp.md describes the tools for people.
"""
