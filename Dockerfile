# polar-flow: the API, the Dagster webserver and the Dagster daemon in one image; docker-compose.yaml runs
# each as a service over one POLAR_HOME volume (/data). docs/containers.md tells the whole story.
ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: the venv from uv.lock (no dev tools), with the postgres extra ---------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
# Dependencies first, in a layer of their own: a code change does not reinstall them.
RUN uv sync --frozen --no-dev --extra postgres --no-install-project
COPY polar_pipeline ./polar_pipeline
COPY polar_api ./polar_api
# The project itself, editable: the venv points at /app, where the runtime stage puts the code.
RUN uv sync --frozen --no-dev --extra postgres

# --- runtime: the venv and the code, run by an unprivileged user who owns only /data -----------------------
FROM ${PYTHON_IMAGE}
# DAGSTER_EVENT_BATCH_SIZE: our event log writes a batch of Dagster events in one transaction per shard.
ENV PYTHONUNBUFFERED=1 PATH="/app/.venv/bin:$PATH" POLAR_HOME=/data DAGSTER_HOME=/data/dagster \
    DAGSTER_EVENT_BATCH_SIZE=5000
RUN groupadd --gid 10001 polar \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/polar --shell /usr/sbin/nologin polar \
    && mkdir /data && chown 10001:10001 /data
WORKDIR /app
COPY --from=builder /app/.venv /app/.venv
# pyproject.toml names the code location for `dagster` commands run in /app; workspace.yaml for -w;
# llms.txt is what the API serves at /llms.txt.
COPY pyproject.toml workspace.yaml llms.txt ./
COPY dbt_like_sql ./dbt_like_sql
COPY polar_pipeline ./polar_pipeline
COPY polar_api ./polar_api
# The code is root's and read-only to the app, so compile it now rather than on every start.
RUN python -m compileall -q polar_pipeline polar_api
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000 3000
# The API answers /health with 200 once a serving snapshot is published (503 before the first one).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["polar-flow", "api", "--host", "0.0.0.0", "--port", "8000"]
