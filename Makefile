# `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export NO_MKDOCS_2_WARNING := 1
export PYTHONUNBUFFERED := 1
# Python caches the bytecode of what it imports (pip installs with --no-compile, below). An
# environment that forbids it recompiles torch on every start: `import torch` took 6.5 s
# instead of 4 s on a 2-core EPYC, and many tests start Python processes of their own.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test test-slow docs install lint format clean

# what the demo needs (torch, adamml and its runtime dependencies) ...
$(VENV)/.runtime: pyproject.toml tools/install.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch and torchvision come from the wheels already on this machine's disk; one resolver
	# run, no byte-compiling of every installed file (Python compiles what it imports), and uv
	# where it can (pip's index settings; pip if uv fails): 21 s instead of pip's 59 s
	$(PY) tools/install.py torch==2.14.1 torchvision==0.29.1 -e .
	touch $@

# ... and what the tests and the docs add
$(VENV)/.installed: $(VENV)/.runtime
	$(PY) tools/install.py -e '.[test,docs]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.runtime
	rm -rf demo_out  # the previous demo run, if any (make demo always starts afresh)
	$(VENV)/bin/adamml demo --out demo_out

test: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	# two or more workers (pytest-xdist, one thread each; tests/conftest.py): 1.4x on 2 cores
	$(PY) -m pytest -q -n auto --maxprocesses 4
	$(PY) -m pytest -q examples/plugins/adamml-mv/tests  # the example plugin's own suite
	# not -q: it logs at ERROR only, so --strict would not see the warnings
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir build/site

test-slow: install
	$(PY) -m pytest -q -m slow

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

docs: install
	$(PY) -m mkdocs build --strict --site-dir build/site

clean:
	rm -rf build site .pytest_cache demo_out
