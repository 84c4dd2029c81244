# Two commands set everything up on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint install bytecode demo-cli bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP) $@

install: $(STAMP)

# The project's own bytecode, written ahead: where PYTHONDONTWRITEBYTECODE is set, every
# process (each engine run, sweep cell and test worker) would otherwise compile the modules
# it imports anew, 0.15-0.25 s a run (docs/testing-time.md). Up to date, this takes 0.1 s.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q engine spfde_gui tests > /dev/null

# Opens the studio on the embedded demo preset. Without a display there is no window to
# open: say so and run the demo in the terminal instead (xvfb-run make run gives a screen).
# With one, first name any system library Qt's xcb plugin lacks, and the apt-get line.
run: $(STAMP) bytecode
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ] || [ "$$QT_QPA_PLATFORM" = offscreen ]; then \
		$(BIN)/python -m spfde_gui.system.qt_libs || exit 1; \
		$(BIN)/spfde-gui --preset demo; \
	else \
		echo "No display found (DISPLAY is unset): running the demo in the terminal instead."; \
		echo "For the window: xvfb-run make run, or run make run on a desktop."; \
		$(BIN)/spfde-train run --preset demo; \
	fi

# Runs the demo training in the terminal (no window).
demo-cli: $(STAMP)
	$(BIN)/spfde-train run --config assets/presets/demo.yaml

# Lint (ruff), types of the pure modules (mypy) and the layering contracts (import-linter),
# all configured in pyproject.toml, then the tests.
lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy $$($(BIN)/python scripts/pure_modules.py --paths)
	$(BIN)/lint-imports

# In parallel: one pytest-xdist worker per usable core (SPFDE_TEST_WORKERS overrides), one
# torch thread each, the Qt tests together on one worker (tests/suite_time.py); the wall time
# and load average are printed at the end.
test: lint bytecode
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider -n auto --dist loadgroup

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
