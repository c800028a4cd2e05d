# Everything bootstraps from python3 alone: the first target run creates .venv and installs
# the project with its dev tools; later runs reuse it until pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OLD := .venv-oldest
OLD_STAMP := $(OLD)/.installed

.PHONY: demo test lint test-newest test-oldest bench snapshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# sqlmodel 0.0.24 is what users with velora installed hold; the data layer and CLI must work there.
$(OLD_STAMP): pyproject.toml
	$(PYTHON) -m venv $(OLD)
	$(OLD)/bin/pip install -q --upgrade pip
	$(OLD)/bin/pip install -q -e '.[dev]' 'sqlmodel==0.0.24'
	touch $@

demo: $(STAMP)
	$(BIN)/velora-tui demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-newest: $(STAMP)
	$(BIN)/pytest -q

test-oldest: $(OLD_STAMP)
	$(OLD)/bin/pytest -q -m "not ui" -p no:randomly

test: lint test-newest test-oldest

snapshots: $(STAMP)
	$(BIN)/pytest -q tests/test_snapshots.py --snapshot-update

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(OLD) .mypy_cache .pytest_cache .ruff_cache
