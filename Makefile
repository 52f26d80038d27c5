# Two commands on a fresh Debian/Ubuntu machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit deps venv clean images test-containers test-ide test-extension extension

demo: deps
	$(BIN)/nhdev demo

# The container tests run when podman can be installed (root with apt); else a line says why not.
test: deps lint typecheck
	$(BIN)/pytest -q
	@./scripts/test-extension --if-possible
	@./scripts/test-containers --if-possible
	@./scripts/test-ide --if-possible

# nhdev's base, dev-python and sidecar images, built locally into podman's store (cached).
images:
	@./scripts/build-images

# Real containers: `make images`, then tests/containers on the podman runtime.
test-containers: venv
	@./scripts/test-containers

# The VS Code extension: unit tests (node --test) and vscode_extension/nhdev-<version>.vsix.
test-extension extension:
	@./scripts/test-extension

# The VS Code extension in real VS Code (code-server + headless Chromium); installs its deps (cached).
# It also runs the extension's unit tests and packages the .vsix.
test-ide: venv
	@./scripts/test-ide

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
