# Two commands matter: `make demo` and `make test`. Each installs what it needs from a fresh clone.
SHELL := /bin/bash
# uv from PATH, else the one pip installs as a module (bootstrapped on first use).
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := python3 -m uv
endif
VENV := .venv
PY := $(VENV)/bin/python
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup demo test lint typecheck unit bench bench-import docs clean

$(VENV)/.synced: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen
	@touch $@

setup: $(VENV)/.synced

lint: setup
	$(VENV)/bin/ruff check polar_pipeline polar_api tests
	$(VENV)/bin/ruff format --check polar_pipeline polar_api tests

typecheck: setup
	$(VENV)/bin/mypy --strict polar_pipeline polar_api

unit: setup
	$(VENV)/bin/pytest -q -n 2

# The type check runs beside the tests (output kept per target), so it adds little to the wall time.
test: lint
	@$(MAKE) --no-print-directory -j2 --output-sync=target typecheck unit

demo: setup
	$(VENV)/bin/polar-flow demo

docs: setup
	$(PY) -m polar_pipeline.sqlmodels.docs
	$(PY) -m polar_pipeline.llms_txt

# wrk (Debian's package) loads the API from a separate process; installed here when missing and root.
bench: setup
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 \
		&& apt-get install -y -qq wrk >/dev/null 2>&1; } || echo "wrk is missing: the API figures are skipped"
	$(VENV)/bin/python -m polar_pipeline.bench
	$(VENV)/bin/python -m polar_pipeline.bench_import

# The account-export import alone: a 5-year export (generated once, cached), imported, derived, published.
bench-import: setup
	$(VENV)/bin/python -m polar_pipeline.bench_import

clean:
	rm -rf $(VENV) .demo
