# Two commands do all the set-up: `make demo` and `make test`. Each creates or reuses .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synthq-installed

.PHONY: demo test check clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[cpu,dev]'
	# PyPI's torchvision/torchaudio/torchcodec do not match the CPU torch and break
	# transformers' imports; text models need none of them.
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec
	$(BIN)/synthq prepare-model
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/synthq demo

test: $(STAMP)
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/pip check || true

clean:
	rm -rf lake .pytest_cache
