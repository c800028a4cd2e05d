# Everything bootstraps from python3 alone: the first target run creates .venv and installs
# the project with its dev tools; later runs reuse it until pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OLD := .venv-oldest
OLD_STAMP := $(OLD)/.installed

.PHONY: demo test lint test-newest test-oldest soak bench snapshots sql clean

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
	$(BIN)/pytest -q -m "not soak"

test-oldest: $(OLD_STAMP)
	$(OLD)/bin/pytest -q -m "not ui and not soak"

test: lint test-newest test-oldest

# The long fault and load tests (minutes): a 10 s lock, 2,000 episodes/s for 30 s, 100 databases,
# 10,000 experiments, the writer's p99 commit latency with a reader attached.
soak: $(STAMP)
	$(BIN)/pytest -q -m soak tests/test_soak.py

snapshots: $(STAMP)
	$(BIN)/pytest -q tests/test_snapshots.py --snapshot-update

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# The first load's statements, compiled ahead of time (velora_tui/data/queries.py says why).
sql: $(STAMP)
	$(BIN)/python -c "from velora_tui.data.queries import write_first_load_sql as w; w()"
	$(BIN)/ruff format -q velora_tui/data/first_load_sql.py

clean:
	rm -rf $(VENV) $(OLD) .mypy_cache .pytest_cache .ruff_cache
