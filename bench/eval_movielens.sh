#!/usr/bin/env bash
# Reproduces the MovieLens figures in README.md, "Personalization quality": convert ml-latest-small, ingest,
# build global memory, then the two eval runs of the protocol. The selection run (seed 1) is where the
# rating head was chosen; the reported run (seed 3) was run once, afterwards. Here (2 cores) the two evals
# took 16 and 45 minutes, and ingesting these 72,533 records about 3. Run nothing else meanwhile: two
# llama.cpp processes on 2 cores slow each other down badly.
#
# Usage: bench/eval_movielens.sh [OUT_DIR]
# MOVIELENS=dir and LOGO=path/to/logo override the defaults; for a quick smoke run of the pipeline,
# MAX_USERS=12 SELECT_PER_BUCKET=2 PER_BUCKET=2 shrink it (the figures then mean nothing).
set -euo pipefail
OUT=${1:-/tmp/logo-eval-movielens}
ML=${MOVIELENS:-$(dirname "$0")/../../shared/eval-data/ml-latest-small}
LOGO=${LOGO:-$(dirname "$0")/../.venv/bin/logo}
PYTHON=$(dirname "$LOGO")/python
mkdir -p "$OUT"
export LOGO_HOME="$OUT/home"

"$LOGO" convert movielens "$ML" --out "$OUT/data" ${MAX_USERS:+--max-users "$MAX_USERS"}
"$LOGO" ingest "$OUT/data/records.jsonl"
"$LOGO" build-global

common=(--biased-max-diversity 0.55 --json)
"$LOGO" eval "$OUT/data/eval.jsonl" --per-bucket "${SELECT_PER_BUCKET:-40}" --scan 4000 --seed 1 "${common[@]}" \
    --predictions "$OUT/selection.jsonl" > "$OUT/selection.json"
"$LOGO" eval "$OUT/data/eval.jsonl" --per-bucket "${PER_BUCKET:-150}" --scan 0 --seed 3 "${common[@]}" \
    --predictions "$OUT/reported.jsonl" --plot "$OUT/eval_movielens.png" > "$OUT/reported.json"
"$PYTHON" "$(dirname "$0")/eval_compare.py" "$OUT/reported.jsonl" --table
