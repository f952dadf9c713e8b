#!/usr/bin/env bash
# Reproduces the MovieLens figures of docs/evaluation.md: convert ml-latest-small, ingest, build global
# memory, then the protocol. Everything scored is what `logo ask` answers (`logo eval` calls the same code).
#
# Users are split in two halves by crc32(user) % 2: every constant was chosen on half 0, and each reported run
# is `logo eval` on half 1, once (ratings: seed 3, 150 per bucket; recommendations; choices).
#
# Here (2 cores) each rating or choice eval takes 20-40 minutes, the recommend one about 10, and
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

common=(--json)
half() {  # half N FILE: the lines of users whose crc32(user) % 2 is N
    "$PYTHON" -c 'import sys, zlib, json
for line in open(sys.argv[2]):
    if line.strip() and zlib.crc32(json.loads(line)["user"].encode()) % 2 == int(sys.argv[1]): sys.stdout.write(line)' "$1" "$2"
}
for f in eval recommend choice; do
    half 0 "$OUT/data/$f.jsonl" > "$OUT/data/$f-half0.jsonl"
    half 1 "$OUT/data/$f.jsonl" > "$OUT/data/$f-half1.jsonl"
done

# ratings: how the number is read was chosen on a selection run of half 0; the reported run is half 1, once
"$LOGO" eval "$OUT/data/eval-half0.jsonl" --per-bucket "${SELECT_PER_BUCKET:-40}" --scan 4000 --seed 1 "${common[@]}" \
    --predictions "$OUT/selection.jsonl" > "$OUT/selection.json"
"$PYTHON" "$BENCH/rating_select.py" "$OUT/selection.jsonl"
"$LOGO" eval "$OUT/data/eval-half1.jsonl" --per-bucket "${PER_BUCKET:-150}" --scan 0 --seed 3 --methods logo,local \
    "${common[@]}" --predictions "$OUT/reported.jsonl" > "$OUT/reported.json"
"$PYTHON" "$BENCH/eval_compare.py" "$OUT/reported.jsonl" --table

# recommendations: choose on half 0 (no model runs), report on half 1
"$PYTHON" "$BENCH/recommend_select.py" "$OUT/data/recommend.jsonl" --half 0 --per-bucket 1000 --methods logo
"$LOGO" eval "$OUT/data/recommend-half1.jsonl" "${common[@]}" --predictions "$OUT/recommend.jsonl" \
    > "$OUT/recommend.json"
"$PYTHON" "$BENCH/eval_compare.py" "$OUT/recommend.jsonl" --metric hit,ndcg --table

# choices: the weights were fitted on half 0 (with PrefEval's half 0: bench/choice_select.py); report half 1
"$LOGO" eval "$OUT/data/choice-half0.jsonl" --methods logo "${common[@]}" --predictions "$OUT/choice-selection.jsonl" \
    > "$OUT/choice-selection.json"
"$PYTHON" "$BENCH/choice_select.py" "$OUT/choice-selection.jsonl"
"$LOGO" eval "$OUT/data/choice-half1.jsonl" "${common[@]}" --predictions "$OUT/choice.jsonl" > "$OUT/choice.json"
"$PYTHON" "$BENCH/eval_compare.py" "$OUT/choice.jsonl" --table
