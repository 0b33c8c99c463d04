# segpipe developer entry points. `make run` and `make test` create the virtual environment
# from requirements.lock when it is missing or stale, so they are the only two commands a newcomer needs.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.segpipe-installed
CONFIG ?= pipeline/configs/voc_unet.yaml
OUTPUT ?= outputs
PYTEST_ARGS ?=

.PHONY: venv run test bench clean
venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@bash infra/scripts/make_venv.sh "$(VENV)"
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/segpipe run --config $(CONFIG) --output $(OUTPUT)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	@set -e; for script in benchmarks/bench_*.py; do \
	  echo "== $$script"; $(PY) $$script; done

clean:
	rm -rf $(OUTPUT) .pytest_cache
