# Two commands on a fresh machine (Python 3.11 + make):  `make demo`  and  `make test`.
PYTHON ?= python3
UV := .uv/bin/uv
AS_OF ?= 2026-10-20
OUT ?= out/sample
ENTRIES ?= 1000000

.PHONY: setup demo demo-clients test lint sample bench dev clean screenshots

$(UV):
	$(PYTHON) -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check "uv>=0.9"

.venv/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --extra dev --python $(PYTHON)
	touch $@

setup: .venv/.installed

# Main job on the bundled synthetic sample; October 2026 is the open (month-to-date) month.
demo: setup
	.venv/bin/bhi run --extracts data/sample --out $(OUT) --as-of $(AS_OF)

# A billing company's three synthetic clients (sizes, payers and layouts differ), run side by side
# through Dagster, then the portfolio page (docs/operations.md, Running many clients).
CLIENTS_OUT ?= out/clients
demo-clients: setup
	.venv/bin/bhi sample --clients 3 --out $(CLIENTS_OUT) --claims-loop-as-of $(AS_OF)
	.venv/bin/bhi run-all --clients $(CLIENTS_OUT)/clients.yaml --parallel 2 --as-of $(AS_OF)

# Whole test suite, one worker per core, a test file per worker (installs Debian's chromium for the
# browser tests when missing and possible).
test: setup
	bash scripts/ensure-chromium.sh
	.venv/bin/pytest -n auto --dist loadfile

# Static checks (CI runs them before the tests): ruff (pyproject.toml [tool.ruff]), sqlfluff on the SQL
# models (.sqlfluff), and `dg check defs` (the Dagster definitions load and validate; it needs no BHI_*
# variables). VIRTUAL_ENV tells dg the project's .venv is the one meant.
lint: setup
	.venv/bin/ruff check .
	.venv/bin/sqlfluff lint sql
	VIRTUAL_ENV=$(CURDIR)/.venv .venv/bin/dg check defs

# 1440 px screenshots of every page of the sample's dashboards into docs/screenshots/ (headless Debian
# chromium; runs `make demo` first when $(OUT) has no dashboards yet).
screenshots: setup
	test -f $(OUT)/dashboards/index.html || $(MAKE) demo
	.venv/bin/python -m dashboards.screenshots $(OUT)/dashboards docs/screenshots --width 1440

# Regenerate the committed sample (fixed seed).
sample: setup
	.venv/bin/bhi sample --out data/sample --patients 300 --months 6 --end-month 2026-10 --seed 7 --claims-loop-as-of $(AS_OF)

# Benchmark on ~ENTRIES synthetic time entries (docs/performance.md); set WORKDIR to keep the drop.
bench: setup
	.venv/bin/bhi bench --entries $(ENTRIES) $(if $(WORKDIR),--workdir $(WORKDIR))

# Dagster UI + daemon on the bundled sample (http://127.0.0.1:3000); launch the `nightly` job there.
# DAGSTER_HOME=.dagster_home gets config/dagster.yaml (telemetry and the first-visit pop-up off, one run
# per warehouse in the run queue). The schedules and the extract-drop sensor run (AUTOMATION=off: stopped).
# Ctrl-C stops it (docs/operations.md). `exec`: make waits for dg alone, nothing is left behind.
AUTOMATION ?= on
dev: setup
	mkdir -p .dagster_home out/sample && cp config/dagster.yaml .dagster_home/dagster.yaml
	VIRTUAL_ENV=$(CURDIR)/.venv DAGSTER_HOME=$(CURDIR)/.dagster_home DAGSTER_DISABLE_TELEMETRY=yes BHI_AUTOMATION=$(AUTOMATION) \
	BHI_EXTRACTS_DIR=$(CURDIR)/data/sample BHI_OUT_DIR=$(CURDIR)/$(OUT) \
	BHI_WAREHOUSE=$(CURDIR)/$(OUT)/warehouse.duckdb BHI_REFERENCE_DIR=$(CURDIR)/data/reference \
	exec .venv/bin/dg dev $(if $(PORT),--port $(PORT))

clean:
	rm -rf out .dagster_home .pytest_cache
