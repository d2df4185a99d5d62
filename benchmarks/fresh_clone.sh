#!/usr/bin/env bash
# A new user's run on real data: clone this repository at COMMIT into a fresh folder, run `DATA=CARVE ./run.sh`
# on a mini competition carved from a labelled folder (python -m pipeline holdout), and append the local test
# score and wall time to docs/real-dev/fresh-clone.csv (columns code,commit,seed,test_score,wall_s).
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
out="$here/docs/real-dev/fresh-clone.csv"
mkdir -p "$(dirname "$out")"
[ -f "$out" ] || echo "code,commit,seed,test_score,wall_s" > "$out"
echo "$label,$(git -C "$work/repo" rev-parse --short HEAD),$seed,$score,$wall" >> "$out"
echo "$label seed $seed: local test score $score in $wall s"
