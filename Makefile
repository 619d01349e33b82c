# Two commands do all the set-up on a fresh machine (Python >= 3.10 and make):
#   make lab    create .venv if missing, install everything, open the course in JupyterLab
#   make test   the same install, then the whole test suite
# Re-running either is fast: the install step runs again only when a requirements
# file or the course package's pyproject.toml changed.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cnn-course-installed
PYTEST_ARGS ?=

.PHONY: setup lab test lint release system-deps clean help

help:
	@echo "make lab          install what is missing, then open the course in JupyterLab"
	@echo "make test         install what is missing, then run the whole test suite"
	@echo "make lint         ruff on utils/ and tests/"
	@echo "make release      regenerate assignments/ from solutions/ with nbgrader"
	@echo "make system-deps  (root, Debian/Ubuntu) offline Fashion-MNIST and Chromium for the browser test"

setup: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt utils/pyproject.toml tools/fetch_offline_assets.sh
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "The course needs Python 3.10 or newer; $(PYTHON) is $$($(PYTHON) --version)."; \
		  echo "Run make with PYTHON=python3.11 (or another 3.10-3.13)."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps -r requirements-nodeps.txt
	bash tools/fetch_offline_assets.sh $(VENV)
	@touch $(STAMP)

lab: setup
	$(BIN)/jupyter lab course/00_start_here.ipynb

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check utils tests benchmarks tools nbgrader_config.py

release: setup
	$(BIN)/python tools/release.py

# Debian/Ubuntu packages: the offline copy of Fashion-MNIST and the browser the
# end-to-end widget test drives. Needs root (CI runs as root).
system-deps:
	@need=""; \
	test -d /usr/share/datasets/fashion-mnist || need="$$need dataset-fashion-mnist"; \
	command -v chromium >/dev/null || need="$$need chromium fonts-dejavu-core"; \
	if [ -n "$$need" ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$need; \
	else echo "system packages already installed"; fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis tests/artifacts
