# segpipe developer entry points. `make run` and `make test` create the virtual environment
# from requirements.lock when it is missing or stale, so they are the only two commands a newcomer needs.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.segpipe-installed
CONFIG ?= pipeline/configs/voc_unet.yaml
OUTPUT ?= outputs
PYTEST_ARGS ?=
# Tests run in 2 processes (pytest-xdist), one test file per process at a time (`--dist loadfile`: a
# module-scoped pipeline run stays in one process); `make test TEST_WORKERS=0` runs them in this process.
TEST_WORKERS ?= 2

.PHONY: venv run test bench clean browser
venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@bash infra/scripts/make_venv.sh "$(VENV)"
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/segpipe run --config $(CONFIG) --output $(OUTPUT)

test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Headless Chromium for the MLflow UI test (Debian's package; root or passwordless sudo, non-interactive).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo "sudo -n"); \
	  echo "Installing chromium (apt-get) for the MLflow UI test"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

bench: $(STAMP)
	@set -e; for script in benchmarks/bench_*.py; do \
	  echo "== $$script"; $(PY) $$script; done

clean:
	rm -rf $(OUTPUT) .pytest_cache
