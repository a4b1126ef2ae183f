# The README's two commands: `make run` and `make test`. Everything a fresh machine needs is here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Re-install when pyproject.toml changes.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
E5     := .models/multilingual-e5-small/RAG_VERSION
HOST   ?= 127.0.0.1
PORT   ?= 7860

.PHONY: setup native-llm run index test test-unit test-integration reliability browser eval eval-accept brief bench lint clean

setup: $(STAMP) models native-llm

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: an unpinned torch pulls several GB of CUDA packages; 2.13.0 has a local CPU wheel.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

models: $(STAMP)
	$(BIN)/rag setup

# The embedded model's runtime built for this CPU (rag/native.py): the prebuilt wheel stops at AVX2; on an
# AVX-512 CPU a build of the same version processes prompts faster (`rag bench speed`). About 7 minutes once per
# machine (the wheel is cached outside the clone, keyed by version, CPU flags and build options); a failed build keeps the prebuilt
# wheel, and so does a build that crashes on its first prompt (checked with the model, so after `models`).
# NATIVE_LLM=0 skips it.
NATIVE_LLM ?= 1
native-llm: $(STAMP) models
	RAG_NATIVE_LLM=$(NATIVE_LLM) $(BIN)/python -m rag.native

index: setup
	$(BIN)/rag ingest seeds/

run: index
	$(BIN)/rag serve --host $(HOST) --port $(PORT)

# Unit tests (with the fast eval gated on evals/baseline-fakes.json and the browser test), the integration tests
# on the real models, then `rag eval` on the real models over a fresh index of seeds/, gated on the quality metrics
# of evals/baseline.json (right, confidently wrong, refusals, citations; latency reported, not gated: CI machines
# are noisy). The embedded model is deterministic at temperature 0: a change that moves an answer comes with a
# re-accepted baseline (`make eval-accept`), and the diff of that file shows which questions moved.
EVAL_INDEX := .cache/index-seeds
test: setup browser
	$(BIN)/pytest -q
	$(BIN)/pytest -q -m integration
	RAG_INDEX_DIR=$(EVAL_INDEX) $(BIN)/rag ingest --rebuild seeds/ >/dev/null
	RAG_INDEX_DIR=$(EVAL_INDEX) $(BIN)/rag eval --no-latency-gate --out evals/out/ci

test-unit: setup browser
	$(BIN)/pytest -q

test-integration: setup
	$(BIN)/pytest -q -m integration

# The reliability battery alone (README "Reliability and security"): its fast part, then the injection battery on
# the real model and the load test; each run ends with the table of cases.
reliability: setup browser
	$(BIN)/pytest -q tests/test_reliability.py tests/test_fuzz.py tests/test_security.py
	$(BIN)/pytest -q -m integration tests/test_integration_injection.py tests/test_load.py

# Debian's chromium for the browser test (Playwright drives it; no browser download). Needs root or sudo;
# without it the browser test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q chromium >/dev/null 2>&1; } || \
	  echo "warning: could not install Debian's chromium; the browser test will be skipped"; }

# Regression evaluation of the seed question set on the real models, gated on evals/baseline.json.
eval: index
	$(BIN)/rag eval

# Store a new baseline after an intended change (commit evals/baseline.json with the change).
eval-accept: setup
	RAG_INDEX_DIR=$(EVAL_INDEX) $(BIN)/rag ingest --rebuild seeds/ >/dev/null
	RAG_INDEX_DIR=$(EVAL_INDEX) $(BIN)/rag eval --accept --out evals/out/accept

brief: index
	$(BIN)/rag brief --lang ar --format md

bench: setup
	$(BIN)/rag bench retrieval

lint: setup
	$(BIN)/ruff check rag tests app.py

clean:
	rm -rf $(VENV) .models index
