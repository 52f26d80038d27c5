# Two commands on a fresh Debian/Ubuntu machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit deps venv clean

demo: deps
	$(BIN)/nhdev demo

test: deps lint typecheck
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check nhdev sidecar tests bench

typecheck: venv
	$(BIN)/mypy

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# Debian packages the sandbox needs; installed when root, explained when not.
deps: venv
	@./scripts/install-system-deps

clean:
	rm -rf $(VENV) build *.egg-info
