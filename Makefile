# Two commands do all set-up on a fresh machine:
#   make demo   - install into .venv, then run the main job on the embedded synthetic data
#   make test   - install into .venv, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: setup demo test

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints-cpu.txt -e '.[dev,pose]'
	touch $@

demo: setup
	$(BIN)/ssmar demo

test: setup
	$(BIN)/pytest -q
