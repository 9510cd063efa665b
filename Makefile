# Two commands on a fresh machine: `make train` and `make test`. Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned here so pip takes the local CPU build; pyproject.toml keeps a range for users.
TORCH_PIN ?= torch==2.13.0

.PHONY: venv train test test-slow lint typecheck bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -e ".[dev,slurm]"
	touch $@

venv: $(VENV)/.installed

train: venv
	$(VENV)/bin/hieros-train $(ARGS)

test: venv
	$(PY) -m pytest -q $(ARGS)

test-slow: venv
	$(PY) -m pytest -q -m slow $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy

bench: venv
	$(VENV)/bin/hieros-bench $(ARGS)

clean:
	rm -rf $(VENV) runs wandb
