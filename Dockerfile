# polar-flow: API + Dagster code location in one image. POLAR_HOME is a volume.
FROM python:3.11-slim
# DAGSTER_EVENT_BATCH_SIZE: our event log writes a batch of Dagster events in one transaction per shard.
ENV PYTHONUNBUFFERED=1 UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy POLAR_HOME=/data DAGSTER_EVENT_BATCH_SIZE=5000
RUN pip install --no-cache-dir uv
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY polar_pipeline ./polar_pipeline
COPY polar_api ./polar_api
COPY dbt_like_sql ./dbt_like_sql
COPY workspace.yaml ./
RUN uv sync --frozen --no-dev
ENV PATH="/app/.venv/bin:$PATH"
VOLUME ["/data"]
EXPOSE 8000 3000
CMD ["polar-flow", "api", "--host", "0.0.0.0", "--port", "8000"]
