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
# `make autograde A=ps1_convolution ARGS="--workers 4"`: the assignment to grade and extra
# options of `python -m cnn_course.grading autograde` (docs/nbgrader.md).
A ?=
ARGS ?=
# Extra options for `make lab`, e.g. LAB_ARGS="--no-browser --port=8890"
# (tests/test_browser.py starts the course's server through this target).
LAB_ARGS ?=
# Unit tests only: what `make test-fast` leaves out (markers in pytest.ini).
SLOW_MARKERS := not notebook and not nbgrader and not browser
# How git cleans notebooks (see the git-filter target): --keep-id keeps the
# committed cell ids, which nbstripout would otherwise renumber; the extra keys
# are what JupyterLab adds when it saves (kernel details, collapsed cells).
NBSTRIPOUT := "$(abspath $(BIN))/python" -m nbstripout --keep-id
NBSTRIPOUT_EXTRA_KEYS := metadata.language_info.codemirror_mode metadata.language_info.file_extension \
	metadata.language_info.mimetype metadata.language_info.nbconvert_exporter \
	metadata.language_info.pygments_lexer metadata.language_info.version \
	cell.metadata.jupyter cell.metadata.jp-MarkdownHeadingCollapsed

.PHONY: setup git-filter lab test test-fast lint release autograde system-deps clean help

help:
	@echo "make lab          install what is missing, then open the course in JupyterLab"
	@echo "make test         install what is missing, then run the whole test suite"
	@echo "make test-fast    the unit tests only: no notebooks, nbgrader or browser (the inner loop)"
	@echo "make lint         ruff on utils/ and tests/"
	@echo "make release      regenerate assignments/ from solutions/ with nbgrader"
	@echo "make autograde A=ps1_convolution [ARGS=...]  grade every submission of an assignment, each in a sandbox"
	@echo "make system-deps  (root, Debian/Ubuntu) offline Fashion-MNIST, Chromium for the browser test, bubblewrap for grading"

KERNEL_CONFIG := $(VENV)/etc/ipython/ipython_kernel_config.py

setup: $(STAMP) $(KERNEL_CONFIG) git-filter

# Kernels started from the environment keep TensorFlow's C++ start-up lines out of the
# notebooks (why: jupyter_config/ipython_kernel_config.py).
$(KERNEL_CONFIG): jupyter_config/ipython_kernel_config.py $(STAMP)
	@mkdir -p $(dir $@)
	cp $< $@

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

# In a git clone of the course: git sees every notebook without its outputs
# (nbstripout is the clean filter for *.ipynb, see .gitattributes), and `git pull`
# sets local changes aside and re-applies them (autoStash). Running and saving
# notebooks then never blocks a `git pull` (README, "Your work and git pull").
git-filter: $(STAMP)
	@if [ "$$(git rev-parse --show-toplevel 2>/dev/null)" = "$(CURDIR)" ] && \
	    { [ "$$(git config --local filter.nbstripout.clean)" != '$(NBSTRIPOUT)' ] || \
	      [ "$$(git config --local filter.nbstripout.extrakeys)" != '$(NBSTRIPOUT_EXTRA_KEYS)' ]; }; then \
		$(BIN)/nbstripout --install --attributes .gitattributes && \
		git config --local filter.nbstripout.clean '$(NBSTRIPOUT)' && \
		git config --local filter.nbstripout.extrakeys '$(NBSTRIPOUT_EXTRA_KEYS)' && \
		git config --local diff.ipynb.textconv '$(NBSTRIPOUT) --textconv' && \
		git config --local merge.autoStash true && \
		git config --local rebase.autoStash true && \
		echo "git now ignores notebook outputs, and git pull keeps your edits (see the README)"; \
	fi

# The server serves the repository root and opens the start page (settings in
# jupyter_config/). nbgrader runs the `alembic` program, so .venv/bin goes on PATH.
lab: setup
	PATH="$(abspath $(BIN)):$$PATH" JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter_config$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" \
		$(BIN)/jupyter lab $(LAB_ARGS)

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -m "$(SLOW_MARKERS)" $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check utils tests benchmarks tools jupyter_config nbgrader_config.py

release: setup
	$(BIN)/python tools/release.py

# Grades nbgrader/submitted/*/$(A)/ into the gradebook (one sandbox per submission; needs
# bubblewrap, see system-deps). ARGS, e.g. "--workers 4 --student alice bob", go to the command.
autograde: setup
	$(if $(A),,$(error say which assignment: make autograde A=ps1_convolution [ARGS="--workers 4"]))
	$(BIN)/python -m cnn_course.grading autograde $(A) $(ARGS)

# Debian/Ubuntu packages: the offline copy of Fashion-MNIST, the browser the
# end-to-end widget test drives, and bubblewrap, the sandbox that grading runs
# every submission in (python -m cnn_course.grading). Needs root (CI runs as root).
system-deps:
	@need=""; \
	test -d /usr/share/datasets/fashion-mnist || need="$$need dataset-fashion-mnist"; \
	command -v chromium >/dev/null || need="$$need chromium fonts-dejavu-core"; \
	command -v bwrap >/dev/null || need="$$need bubblewrap"; \
	if [ -n "$$need" ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$need; \
	else echo "system packages already installed"; fi

# The git filter runs this environment's Python: remove it with the environment.
clean:
	@if [ "$$(git config --local filter.nbstripout.clean 2>/dev/null)" = '$(NBSTRIPOUT)' ]; then \
		$(BIN)/nbstripout --uninstall; fi
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis tests/artifacts
