# make demo: venv + install + start the whole workbench with the built-in demo scenario.
# make test: venv + install (+ Debian chromium/ffmpeg/espeak-ng when root) + the whole suite in a loopback-only netns.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench install system-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	scripts/system-deps

demo: $(STAMP)
	$(BIN)/workbench demo

test: $(STAMP) system-deps
	scripts/netns-run $(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/workbench bench

clean:
	rm -rf $(VENV) .pytest_cache
