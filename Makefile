# The README's two commands: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: install demo test clean slurm

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml engines/titan/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU build of torch first (a plain `torch` requirement would pull a multi-GB CUDA build)
	$(BIN)/pip install -q torch==2.13.0
	# engines/titan[export] builds llama.cpp from source (llama-cpp-python): ~18 min on 2 cores the first
	# time, seconds afterwards (pip caches the wheel)
	@echo "installing; the first install builds llama.cpp from source (~18 min on 2 cores)"
	$(BIN)/pip install -q -e ".[all,test]" -e "engines/titan[test,export,eval]"
	touch $@

demo: install
	$(BIN)/datakit demo

test: install slurm
	$(BIN)/pytest -q -p no:cacheprovider

# The Slurm scale-out test (tests/test_scale_out.py) starts a real single-node cluster from Debian's packages.
# Installed here when missing (root, or passwordless sudo); if that is impossible the test fails and says why.
SLURM_PKGS = slurmctld slurmd slurm-client munge
slurm:
	@command -v sbatch >/dev/null && test -x /usr/sbin/slurmctld -a -x /usr/sbin/slurmd -a -x /usr/sbin/munged || { \
	  echo "installing Slurm for the scale-out test: apt-get install $(SLURM_PKGS)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo -n ); \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $(SLURM_PKGS) >/dev/null 2>&1 || { \
	    $$SUDO apt-get update -q >/dev/null 2>&1 && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $(SLURM_PKGS) >/dev/null; } || \
	  echo "warning: could not install Slurm ($(SLURM_PKGS)); the Slurm scale-out test will fail with the reason"; }

clean:
	rm -rf $(VENV) data tokenizers outputs exports
