# Two commands on a fresh machine: `make train` and `make test`. Both create .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is pinned here so pip takes the local CPU build; pyproject.toml keeps a range for users.
TORCH_PIN ?= torch==2.13.0

.PHONY: venv train test test-slow lint typecheck bench wheel-check clean

$(VENV)/.installed: pyproject.toml setup.py
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

# Build the wheel, install it into a fresh venv and compose a config from outside the checkout:
# the configs must come from inside the installed package (conf/ is shipped as hieros_pl/conf).
wheel-check: venv
	set -e; outside=$$(mktemp -d); rm -rf build; \
	$(PY) -m pip wheel --quiet --no-deps -w $$outside/dist . ; \
	python3 -m venv $$outside/venv; \
	$$outside/venv/bin/python -m pip install --quiet $(TORCH_PIN); \
	$$outside/venv/bin/python -m pip install --quiet $$outside/dist/hieros_pl-*.whl; \
	cd $$outside; \
	./venv/bin/hieros-train --cfg job experiment=quick > job.yaml; \
	grep -q "^name: quick_catch" job.yaml; \
	./venv/bin/python -c "import hieros_pl.train as t; assert 'site-packages' in str(t.CONF_DIR), t.CONF_DIR"; \
	echo "wheel-check: the installed wheel composes experiment=quick from $$outside"; \
	rm -rf $$outside

clean:
	rm -rf $(VENV) runs wandb build
