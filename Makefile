# Everything bootstraps from python3 alone: the first target run creates .venv and installs
# the project with its dev tools; later runs reuse it until pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OLD := .venv-oldest
OLD_STAMP := $(OLD)/.installed
# pytest-xdist workers. Most tests wait on processes, timers and sockets rather than compute, so
# more workers than the 2 cores of CI's machine finish sooner (CONTRIBUTING.md: the tiers). A
# test file stays on one worker: its module-wide fixtures (a batch of commands run once, an
# sshd) are then made once, not once per worker (the newest pass: 4.5 -> 3.5 min).
JOBS ?= 4
XDIST := -n $(JOBS) --dist loadfile
PYTEST := $(BIN)/pytest -q $(XDIST)

.PHONY: demo test lint test-unit test-app test-system test-newest test-oldest soak bench \
	snapshots sql clean

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

# ruff, formatting, mypy --strict, and the layers' import contracts (pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache --no-logo

# The tiers, each alone: unit (no process, no sleep: under a minute), app (Pilot, snapshots),
# system (real processes: the CLI, writers, a pseudo-terminal, sshd, Chromium).
test-unit: $(STAMP)
	$(PYTEST) tests/unit

test-app: $(STAMP)
	$(PYTEST) tests/app

test-system: $(STAMP)
	$(PYTEST) -m "not soak" tests/system

# Every tier on the newest dependencies; the slowest tests named, to keep `make test` short.
test-newest: $(STAMP)
	$(PYTEST) -m "not soak" --durations=15 tests

# On sqlmodel 0.0.24, the tests that touch SQLModel. Reading uses none at run time (every
# statement is compiled ahead of time), so what 0.0.24 must pass is: its statements are the
# compiled ones, and the data layer reads them right (the unit tier: test_queries and the
# rest); the simulated writer writes through it as velora does, and the commands read what it
# wrote (the CLI's process tests, the live feed). The oldest venv is built while the newest
# dependencies' tests run.
OLDEST_TESTS := tests/unit $(addprefix tests/system/test_,cli.py cli_figures.py run_figures.py \
	feed.py)
test-oldest: $(OLD_STAMP)
	$(OLD)/bin/pytest -q $(XDIST) -m "not ui and not soak" $(OLDEST_TESTS)

test: lint
	@$(MAKE) --no-print-directory $(OLD_STAMP) > $(OLD).log 2>&1 & echo $$! > $(OLD).pid
	$(MAKE) --no-print-directory test-newest
	@while kill -0 $$(cat $(OLD).pid) 2>/dev/null; do sleep 1; done; rm -f $(OLD).pid
	@test -f $(OLD_STAMP) || { cat $(OLD).log; exit 1; }
	$(MAKE) --no-print-directory test-oldest

# The long fault and load tests (minutes): a 10 s lock, 2,000 episodes/s for 30 s, 100 databases,
# 10,000 experiments, the writer's p99 commit latency with a reader attached, 5,000 databases
# on one remote host.
soak: $(STAMP)
	$(BIN)/pytest -q -m soak tests/system

snapshots: $(STAMP)
	$(BIN)/pytest -q tests/app/test_snapshots.py tests/app/test_groups_snapshots.py \
		--snapshot-update

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# Every statement, compiled ahead of time (velora_tui/data/queries.py says why).
sql: $(STAMP)
	$(BIN)/python -c "from velora_tui.data.queries import write_compiled_sql as w; w()"
	$(BIN)/ruff format -q velora_tui/data/compiled_sql.py

clean:
	rm -rf $(VENV) $(OLD) $(OLD).log .mypy_cache .pytest_cache .ruff_cache
