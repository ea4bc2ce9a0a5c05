# The README's two commands: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: install demo test clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml engines/titan/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU build of torch first (a plain `torch` requirement would pull a multi-GB CUDA build)
	$(BIN)/pip install -q torch==2.13.0
	# engines/titan[export] builds llama.cpp from source (llama-cpp-python): ~18 min on 2 cores the first
	# time, seconds afterwards (pip caches the wheel)
	@echo "installing; the first install builds llama.cpp from source (~18 min on 2 cores)"
	$(BIN)/pip install -q -e ".[test]" -e "engines/titan[test,export,eval]"
	touch $@

demo: install
	$(BIN)/datakit demo

test: install
	$(BIN)/pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) data tokenizers outputs exports
