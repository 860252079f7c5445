# Two commands on a fresh machine (Python 3.11 + make):  `make demo`  and  `make test`.
PYTHON ?= python3
UV := .uv/bin/uv
AS_OF ?= 2026-10-20
OUT ?= out/sample

.PHONY: setup demo test sample bench dev clean

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

# Whole test suite (installs Debian's chromium for the browser tests when missing and possible).
test: setup
	bash scripts/ensure-chromium.sh
	.venv/bin/pytest

# Regenerate the committed sample (fixed seed).
sample: setup
	.venv/bin/bhi sample --out data/sample --patients 300 --months 6 --end-month 2026-10 --seed 7

dev: setup
	DAGSTER_HOME=$(CURDIR)/.dagster_home .venv/bin/dg dev

clean:
	rm -rf out .dagster_home .pytest_cache
