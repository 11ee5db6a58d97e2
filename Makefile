# Encore: `make demo` runs the main job end to end, `make test` passes the tests.
SHELL := /bin/bash
UV_RUN := uv run --frozen
export UV_PYTHON := 3.11

.DEFAULT_GOAL := help
.PHONY: help setup jars demo test test-backfill test-crash test-unit screenshots notebooks lint format up down status bench clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## Install everything: system packages, uv, the Python environments, JVM jars
	@bash infra/setup.sh

jars: ## Resolve the JVM jars with Maven (part of setup)
	@mvn -q -B -f infra/jars/pom.xml package

demo: setup ## The main job end to end: platform up, smoke run, pipeline demo, platform down
	@$(UV_RUN) encore demo

test: setup ## Run the whole test suite against real services
	@$(UV_RUN) pytest

test-backfill: setup ## A week of lake_daily backfilled through Airflow vs a direct build (~25 min)
	@$(UV_RUN) pytest -m backfill tests/dags/test_backfill.py

test-crash: setup ## Only the ingestion job's crash-point and outage tests (also in make test)
	@$(UV_RUN) pytest -m crash tests/pipelines/ingest

test-unit: setup ## Only the tests that need no services
	@$(UV_RUN) pytest -m "not integration and not flink and not spark"

screenshots: setup ## Refresh the README's dashboard screenshots (docs/screenshots) from the browser test
	@ENCORE_UPDATE_SCREENSHOTS=1 $(UV_RUN) pytest -p no:cacheprovider tests/dashboards/test_browser.py

notebooks: setup ## Open the data-science notebooks in JupyterLab (on the platform ENCORE_* points at)
	@$(UV_RUN) jupyter lab notebooks/

lint: ## Ruff lint and format check
	@$(UV_RUN) ruff check . && $(UV_RUN) ruff format --check .

format: ## Ruff autofix and format
	@$(UV_RUN) ruff check --fix . && $(UV_RUN) ruff format .

up: ## Start the local platform services (encore up NAME for one service or job)
	@$(UV_RUN) encore up

down: ## Stop everything this ENCORE_HOME started (jobs first, then the services)
	@$(UV_RUN) encore down

status: ## Health of each local service and job
	@$(UV_RUN) encore status

BENCHES := bench_api bench_ingest bench_als_spark bench_als_scale bench_faiss

bench: setup ## Run every benchmark (slow; prints tables, saves JSON under benchmarks/results)
	@$(UV_RUN) encore up kafka
	@for name in $(BENCHES); do echo "== $$name"; $(UV_RUN) python benchmarks/$$name.py || exit 1; done

clean: ## Stop services and remove local state (.encore); keeps venvs and jars
	-@$(UV_RUN) encore down
	rm -rf .encore
