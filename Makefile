# Two jobs for a fresh clone: `make quickstart` (a real study, then its plots) and `make test`.
# Both install into a local virtual environment first.
#
# TORCH is what pip installs for torch before the package. The default is the CPU build these
# machines keep on disk; GPU users keep their own torch:
#   make quickstart TORCH= VENV_ARGS=--system-site-packages

PYTHON ?= python3
VENV ?= .venv
VENV_ARGS ?=
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: quickstart test install clean

quickstart: $(STAMP)
	$(BIN)/optuna-bigmodel run studies/quickstart.yaml

test: $(STAMP)
	$(BIN)/python -m pytest -q

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV_ARGS) $(VENV)
	$(if $(TORCH),$(BIN)/pip install -q "$(TORCH)")
	$(BIN)/pip install -q -e ".[test,digits]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) runs *.egg-info
