# memphis-incidents: `make demo` runs the pipeline offline, `make test` runs the tests.
# Both create .venv on first use and install the project into it, at the exact versions of
# requirements-dev.lock (pyproject.toml keeps the ranges; `make lock` re-resolves them).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements-dev.lock
RUN_ARGS ?=
# The BigQuery emulator runs from a venv of its own: it pins sqlglot and protobuf versions of its
# own and adds google-cloud-bigquery-storage, none of which may change the project's venv.
# It installs from requirements-bqemu.lock: bqemulator 1.4.0 and numpy (its DuckDB UDFs need it,
# and it does not declare it), with every dependency at the version tested.
BQEMU_VENV ?= .venv-bqemu
BQEMU_STAMP := $(BQEMU_VENV)/.installed
BQEMU_LOCK := requirements-bqemu.lock

.PHONY: help install bqemu demo demo-gcp test test-fast typecheck lock lab nightly bench java-check clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python 3.11 or newer is needed (found $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -c "from memphis_incidents.execute import ensure_kernel; ensure_kernel()"
	@# The JVM class-data archive (about half a minute, once per install) is made here, so that no
	@# run pays it; without Java it is skipped, and the first Spark start makes it instead.
	@java -version >/dev/null 2>&1 && $(PY) -c "from memphis_incidents.spark_session import ensure_class_archive as a; \
	  print('JVM class-data archive:', a() or 'not made (Spark will start slower)')" || true
	@touch $@

install: $(STAMP)  ## create .venv and install the project with its test tools

$(BQEMU_STAMP): $(BQEMU_LOCK)
	$(PYTHON) -m venv $(BQEMU_VENV)
	$(BQEMU_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BQEMU_VENV)/bin/python -m pip install --quiet -r $(BQEMU_LOCK)
	@touch $@

bqemu: $(BQEMU_STAMP)  ## create .venv-bqemu with the BigQuery emulator (tests and demo-gcp start it)

java-check:
	@java -version >/dev/null 2>&1 || { echo "Java 17 is needed for Spark: 'sudo apt-get install openjdk-17-jre-headless', 'brew install openjdk@17' or use environment.yml (conda)"; exit 1; }

demo: install java-check  ## run the whole pipeline on the offline demo source; prints the report path
	$(PY) run_pipeline.py $(RUN_ARGS)

typecheck: install  ## mypy on lib/ (settings in pyproject.toml; the version is pinned in the lock)
	$(PY) -m mypy

test: install bqemu java-check typecheck  ## the type check, then the whole test suite (what CI runs)
	$(PY) -m pytest $(PYTEST_ARGS)

DEMO_GCP_ARGS ?=
demo-gcp: install bqemu java-check  ## the GCP profile offline: GCS and BigQuery emulators, Spark Connect, on 127.0.0.1
	$(PY) -m tests.demo_gcp $(DEMO_GCP_ARGS)

test-fast: install bqemu typecheck  ## the type check and the unit tests (no notebooks, Spark or fault runs): about a minute
	$(PY) -m pytest -m "not slow" --ignore=tests/faults $(PYTEST_ARGS)

LOCK_ARGS := --universal --python-version 3.11 --index-url https://pypi.org/simple --no-header --annotation-style line
lock:  ## re-resolve the lock files from pyproject.toml's ranges (needs uv: pipx install uv)
	uv pip compile pyproject.toml --extra dev $(LOCK_ARGS) -o $(LOCK)
	uv pip compile pyproject.toml -c $(LOCK) $(LOCK_ARGS) -o requirements.lock
	printf 'bqemulator==1.4.0\nnumpy\n' | uv pip compile - $(LOCK_ARGS) -o $(BQEMU_LOCK)

LAB_ARGS ?=
lab: install  ## JupyterLab on the notebooks, with the project's kernel (LAB_ARGS=--allow-root as root)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(LAB_ARGS)

clean:  ## remove generated data and run reports (keeps .venv)
	rm -rf data reports

bench: install java-check  ## benchmarks at 1.7M demo rows; writes bench/results.md
	$(PY) bench/run_bench.py $(BENCH_ARGS)

NIGHTLY_ARGS ?= --source memphis-arcgis
nightly: install java-check  ## what cron / the systemd timer run: the live source, incremental
	$(PY) run_pipeline.py $(NIGHTLY_ARGS) --keep-runs 30
