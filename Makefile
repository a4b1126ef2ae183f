# The README's two commands: `make run` and `make test`. Everything a fresh machine needs is here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Re-install when pyproject.toml changes.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
E5     := .models/multilingual-e5-small/RAG_VERSION
HOST   ?= 127.0.0.1
PORT   ?= 7860

.PHONY: setup run index test test-integration bench lint clean

setup: $(STAMP) models

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: an unpinned torch pulls several GB of CUDA packages; 2.13.0 has a local CPU wheel.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

models: $(STAMP)
	$(BIN)/rag setup

index: setup
	$(BIN)/rag ingest seeds/

run: index
	$(BIN)/rag serve --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/pytest -q
	$(BIN)/pytest -q -m integration

test-unit: setup
	$(BIN)/pytest -q

test-integration: setup
	$(BIN)/pytest -q -m integration

bench: setup
	$(BIN)/rag bench retrieval

lint: setup
	$(BIN)/ruff check rag tests app.py

clean:
	rm -rf $(VENV) .models index
