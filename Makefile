# Two entry points: `make demo` and `make test`. Each sets everything up first and is idempotent:
# stamp files in .venv record finished steps, so a second run skips them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# llama.cpp's default -march=native build uses AMX kernels that segfault on these machines: build portable.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAVA_BUILD=OFF
DEMO_HOME ?= .demo-home
LOGO   := LOGO_HOME=$(DEMO_HOME) $(BIN)/logo

.PHONY: bench-scale eval-movielens setup demo test lint bench clean

setup: $(VENV)/.installed $(VENV)/.onnx

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# CPU torch first: an unpinned torch pulled by sentence-transformers would resolve to a multi-GB CUDA build.
$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	touch $@

$(VENV)/.llama: | $(VENV)/.torch
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" FORCE_CMAKE=1 $(BIN)/pip install --quiet llama-cpp-python==0.3.36
	touch $@

# the spark extra: the tests build global memory on Spark local[2] too (Java 17 must be installed)
$(VENV)/.installed: pyproject.toml $(VENV)/.llama
	$(BIN)/pip install --quiet -e '.[dev,spark]'
	touch $@

# The embedder's ONNX export (once, cached in ~/.cache/logo or $$LOGO_CACHE): `logo ask` then embeds without torch.
$(VENV)/.onnx: $(VENV)/.installed
	$(BIN)/python -m logo_cli.onnx_export >/dev/null || echo "logo: no ONNX export; the embedder will use sentence-transformers" >&2
	touch $@

# The main job on sample_histories/, into a fresh store: answers on stdout, the memory each used on stderr.
demo: setup
	rm -rf $(DEMO_HOME)
	$(LOGO) ingest sample_histories/histories.jsonl
	$(LOGO) build-global --seed 0
	@echo; echo "== cold-start user ines (1 record) asks for a dinner: items from her community and everyone =="
	@$(LOGO) ask --explain --user ines "What's an easy dinner I could cook tonight?"
	@echo; echo "== biased user hollis (32 records, nearly all horror films) asks off-profile: dinners, not films =="
	@$(LOGO) ask --explain --user hollis "What should I cook for dinner tonight?"
	@echo; echo "== regular user maya asks for films, then how she would rate one =="
	@$(LOGO) ask --explain --user maya "What should I watch this weekend?"
	@$(LOGO) ask --explain --user maya "How would I rate Barbie?"
	@echo; echo "== maya picks among three films: memory's estimate for her picks, not the model's taste =="
	@$(LOGO) ask --explain --user maya "Which should I watch tonight? options: Barbie, Get Out, Conclave"
	@echo; echo "== an open question is generated text, cut at the first repetition loop =="
	@$(LOGO) ask --user gus_h --max-tokens 80 "How should I start exercising at 52 with a bad knee?"

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check logo_cli tests bench
	$(BIN)/mypy logo_cli

# Speed against the raw components (about 20 minutes). bench-scale writes synthetic stores of 10k, 100k and
# 1M records under /tmp/logo-scale the first time (about 20 minutes for 1M), then measures on them.
bench: setup
	$(BIN)/python bench/bench_cli.py
	$(BIN)/python bench/bench_ingest.py --records 8000
	$(BIN)/python bench/bench_ask.py --questions 6 --repeats 3
	$(BIN)/python bench/bench_answers.py
	$(BIN)/python bench/bench_oneshot.py
	$(BIN)/python bench/bench_serve.py

bench-scale: setup
	$(BIN)/python bench/bench_scale.py
	$(BIN)/python bench/bench_build.py --home /tmp/logo-scale/1000000 --snapshot /tmp/logo-scale/snap-1000000 \
		--figures snapshot,local,full,spark,jvm

eval-movielens: setup  ## the MovieLens quality protocol of README (about 65 minutes on 2 cores)
	bench/eval_movielens.sh

clean:
	rm -rf $(VENV) $(DEMO_HOME) .pytest_cache .mypy_cache .ruff_cache
