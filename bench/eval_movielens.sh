#!/usr/bin/env bash
# Reproduces the MovieLens figures of docs/evaluation.md: convert ml-latest-small, ingest, build global
# memory, then the protocol. Everything scored is what `logo ask` answers (`logo eval` calls the same code).
#
# Ratings: a selection run (seed 1, 40 per bucket) where the way a rating is read (head, mean or median) was
#   chosen by bench/rating_select.py's fixed rule; the reported run (seed 3, 150 per bucket) was run once,
#   afterwards.
# Recommendations: users are split in two halves by crc32(user) % 2. recommend.py's constants were chosen on
#   half 0 (bench/recommend_select.py, no model needed); the reported run is `logo eval` on half 1, once.
#
# Here (2 cores) the two rating evals took about 25 and 60 minutes, the recommend ones a few minutes, and
# ingesting these 72,533 records about 5. Run nothing else meanwhile: two llama.cpp processes on 2 cores slow
# each other down badly.
#
# Usage: MOVIELENS=path/to/ml-latest-small bench/eval_movielens.sh [OUT_DIR]   (or LOGO_EVAL_DATA=folder)
# LOGO=path/to/logo overrides the command; for a quick smoke run of the pipeline, MAX_USERS=12
# SELECT_PER_BUCKET=2 PER_BUCKET=2 shrink it (the figures then mean nothing).
set -euo pipefail
OUT=${1:-/tmp/logo-eval-movielens}
ML=${MOVIELENS:-${LOGO_EVAL_DATA:?set MOVIELENS=path/to/ml-latest-small or LOGO_EVAL_DATA}/ml-latest-small}
LOGO=${LOGO:-$(dirname "$0")/../.venv/bin/logo}
PYTHON=$(dirname "$LOGO")/python
BENCH=$(dirname "$0")
mkdir -p "$OUT"
export LOGO_HOME="$OUT/home"

"$LOGO" convert movielens "$ML" --out "$OUT/data" ${MAX_USERS:+--max-users "$MAX_USERS"}
"$LOGO" ingest "$OUT/data/records.jsonl"
"$LOGO" build-global

common=(--biased-max-diversity 0.55 --json)
# ratings
"$LOGO" eval "$OUT/data/eval.jsonl" --per-bucket "${SELECT_PER_BUCKET:-40}" --scan 4000 --seed 1 "${common[@]}" \
    --predictions "$OUT/selection.jsonl" > "$OUT/selection.json"
"$PYTHON" "$BENCH/rating_select.py" "$OUT/selection.jsonl"
"$LOGO" eval "$OUT/data/eval.jsonl" --per-bucket "${PER_BUCKET:-150}" --scan 0 --seed 3 "${common[@]}" \
    --predictions "$OUT/reported.jsonl" --plot "$OUT/eval_movielens.png" > "$OUT/reported.json"
"$PYTHON" "$BENCH/eval_compare.py" "$OUT/reported.jsonl" --table

# recommendations: choose on half 0, report on half 1
"$PYTHON" "$BENCH/recommend_select.py" "$OUT/data/recommend.jsonl" --half 0 --per-bucket 1000 \
    --biased-max-diversity 0.55
"$PYTHON" -c 'import sys, zlib, json
for line in open(sys.argv[1]):
    if zlib.crc32(json.loads(line)["user"].encode()) % 2 == 1: sys.stdout.write(line)' \
    "$OUT/data/recommend.jsonl" > "$OUT/data/recommend-half1.jsonl"
"$LOGO" eval "$OUT/data/recommend-half1.jsonl" "${common[@]}" --predictions "$OUT/recommend.jsonl" \
    > "$OUT/recommend.json"
"$PYTHON" "$BENCH/eval_compare.py" "$OUT/recommend.jsonl" --table
