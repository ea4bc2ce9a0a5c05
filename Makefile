# The README's two commands: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
# SkyPilot in its own environment: it pins click<8.2, wandb/spaCy/huggingface_hub need click>=8.2 (docs/cloud.md)
SKY_VENV ?= .venv-sky
SKYPILOT = skypilot==0.14.1

.PHONY: install demo test clean cloud slurm

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

# the base SkyPilot package (~2 min): `titan launch` tests parse its task YAML with SkyPilot's own parser
$(SKY_VENV)/.installed:
	$(PYTHON) -m venv $(SKY_VENV)
	$(SKY_VENV)/bin/pip install -q --upgrade pip
	$(SKY_VENV)/bin/pip install -q "$(SKYPILOT)"
	touch $@

# `titan launch` on Azure and RunPod: SkyPilot with those clouds' SDKs (the Azure CLI among them: minutes)
cloud: $(SKY_VENV)/.installed
	$(SKY_VENV)/bin/pip install -q "skypilot[azure,runpod]==0.14.1"

demo: install
	$(BIN)/datakit demo

test: install slurm $(SKY_VENV)/.installed
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
	rm -rf $(VENV) $(SKY_VENV) data tokenizers outputs exports
