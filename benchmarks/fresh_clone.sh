#!/usr/bin/env bash
# A new user's run on real data: clone this repository at COMMIT into a fresh folder, run `DATA=CARVE ./run.sh`
# on a mini competition carved from a labelled folder (python -m pipeline holdout), and append the local test
# score, wall time and the CPU to docs/real-dev/fresh-clone.csv (columns code,commit,seed,test_score,wall_s,cpu: a
# wall time means little without the machine; the five-stage cpu-demo took 671 s on 2 AVX-512 cores, 987 s on 2 AVX2 ones).
#
#   benchmarks/fresh_clone.sh LABEL COMMIT CARVE_DIR SEED
#   e.g. benchmarks/fresh_clone.sh after-fix HEAD /tmp/real/seed0 0
#
# The clone reuses this checkout's .venv (a symlink), so the wall time excludes the one-off install.
# KEEP=DIR keeps the clone's run folders and log in DIR (for re-scoring its probabilities later); by default the
# clone is deleted.
set -euo pipefail
label=$1 commit=$2 carve=$3 seed=$4
here="$(cd "$(dirname "$0")/.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$here" "$work/repo"
git -C "$work/repo" checkout -q "$commit"
ln -s "$here/.venv" "$work/repo/.venv"
started=$SECONDS
(cd "$work/repo" && DATA="$carve" ./run.sh > "$work/log.txt" 2>&1)
wall=$((SECONDS - started))
if [ -n "${KEEP:-}" ]; then
  mkdir -p "$KEEP"
  cp -r "$work/repo/runs/." "$KEEP/" && cp "$work/log.txt" "$KEEP/log.txt"
fi
score=$(grep '^local test score' "$work/log.txt" | awk '{print $4}')
# the CPU model and its widest vector extension, without commas (a CSV field): benchmarks/common.py's cpu_label
cpu=$(cd "$here/benchmarks" && "$here/.venv/bin/python" -c 'from common import cpu_label; print(cpu_label())')
out="$here/docs/real-dev/fresh-clone.csv"
mkdir -p "$(dirname "$out")"
[ -f "$out" ] || echo "code,commit,seed,test_score,wall_s,cpu" > "$out"
echo "$label,$(git -C "$work/repo" rev-parse --short HEAD),$seed,$score,$wall,$cpu" >> "$out"
echo "$label seed $seed: local test score $score in $wall s"
# the tables rendered from fresh-clone.csv (README.md, docs/results.md) follow the new row, so a commit of the row
# commits a table that matches it (tests/test_readme.py checks every table against its file)
"$here/.venv/bin/python" "$here/benchmarks/readme_tables.py" --write \
  || echo "note: the row is written; re-render the tables with: .venv/bin/python benchmarks/readme_tables.py --write" >&2
