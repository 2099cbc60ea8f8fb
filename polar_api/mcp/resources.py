"""Resources: the public tables' documentation, for a model writing ``query_sql`` (and for people).

``polar://tables`` is the index (every public relation, one line each, linked to its own resource);
``polar://tables/<schema.table>`` is one relation's columns, types and meaning. Both are rendered by
``polar_api.read.table_docs``, from the same definitions the tables are built from, so they cannot
disagree with the tables query_sql runs on.

Building that documentation costs a couple of seconds (it builds empty copies of the relations), so the
resources are added on the first ``resources/list`` or ``resources/read``, not when a server starts: an API
worker that is never asked for them never pays for them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.resources import FunctionResource

if TYPE_CHECKING:
    from polar_api.read.table_docs import TableDoc

INDEX_URI = "polar://tables"
MARKDOWN = "text/markdown"


def table_uri(doc: TableDoc) -> str:
    return f"{INDEX_URI}/{doc.relation}"


class TableResources:
    """Adds the table resources to a server once, on first use (thread-safe)."""

    def __init__(self, server: MCPServer) -> None:
        self.server = server
        self._lock = threading.Lock()
        self._added = False

    def ensure(self) -> None:
        with self._lock:
            if self._added:
                return
            from polar_api.read.table_docs import public_tables, render_index_markdown, render_table_markdown

            docs = public_tables()
            index = render_index_markdown(docs, link=table_uri)
            self.server.add_resource(
                FunctionResource(
                    uri=INDEX_URI,
                    name="tables",
                    title="Public tables",
                    description="Every table query_sql reads, with what a row is; each links to its columns",
                    mime_type=MARKDOWN,
                    fn=lambda: index,
                )
            )
            for doc in docs:
                text = render_table_markdown(doc)
                self.server.add_resource(
                    FunctionResource(
                        uri=table_uri(doc),
                        name=doc.relation,
                        title=f"Table {doc.relation}",
                        description=f"The columns of {doc.relation}: names, DuckDB types and meaning",
                        mime_type=MARKDOWN,
                        fn=lambda text=text: text,
                    )
                )
            self._added = True
