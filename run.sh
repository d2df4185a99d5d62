#!/usr/bin/env bash
# plastic-salt in two commands:
#   ./run.sh              the whole pipeline on data/ (synthetic default when data/ holds no competition data)
#   ./run.sh test         the test suite
#   ./run.sh STAGE ARGS   one stage: python -m pipeline STAGE ARGS
#   ./run.sh --force      redo every stage (the data folder is left alone)
#   ./run.sh gpus         the GPU count the main job will use (an error if nvidia-smi and torch disagree)
#   PRESET=NAME ./run.sh  train with that preset (default: gpu-full with a GPU, cpu-demo without)
#   SET='KEY=VALUE;KEY=VALUE' RUN=NAME ./run.sh   the preset with config overrides (train --set), as run NAME
set -euo pipefail
cd "$(dirname "$0")"
export NO_ALBUMENTATIONS_UPDATE=1 HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

DATA=${DATA:-data}
DEMO_TRAIN=${DEMO_TRAIN:-1600}
DEMO_TEST=${DEMO_TEST:-1600}

setup() {
  # (re)create .venv when it is missing or requirements.txt changed since it was made
  if [ -x .venv/bin/python ] && cmp -s requirements.txt .venv/.requirements.installed; then
    return
  fi
  command -v python3 >/dev/null || { echo "error: python3 is not installed; install Python 3.11 first" >&2; exit 1; }
  echo "setting up .venv (pinned requirements.txt)..."
  python3 -m venv .venv
  .venv/bin/python -m pip install -q -q --disable-pip-version-check -r requirements.txt
  cp requirements.txt .venv/.requirements.installed
}

# the test-only pins (requirements-dev.txt) on top, for `./run.sh test`
setup_dev() {
  cmp -s requirements-dev.txt .venv/.requirements-dev.installed && return
  echo "installing the test-only requirements (requirements-dev.txt)..."
  .venv/bin/python -m pip install -q -q --disable-pip-version-check -r requirements-dev.txt
  cp requirements-dev.txt .venv/.requirements-dev.installed
}

py() { .venv/bin/python "$@"; }

# the whole path, once, in Python (pipeline/workflow.py): PRESET, RUN, SET and DATA as in the header
main_job() {
  local args=(run --data "$DATA" --demo-train "$DEMO_TRAIN" --demo-test "$DEMO_TEST")
  [ -n "${PRESET:-}" ] && args+=(--preset "$PRESET")
  [ -n "${RUN:-}" ] && args+=(--run "$RUN")
  [ -n "${SET:-}" ] && args+=(--set "$SET")
  [ "${1:-}" = "--force" ] && args+=(--force)
  py -m pipeline "${args[@]}"
}

case "${1:-}" in
  test)
    shift
    setup
    setup_dev
    py -m pytest -q -p no:cacheprovider tests "$@"
    ;;
  ""|--force)
    setup
    main_job "${1:-}"
    ;;
  gpus)
    setup
    if [ -n "${PRESET:-}" ]; then py -m pipeline gpus --preset-given; else py -m pipeline gpus; fi
    ;;
  -h|--help)
    sed -n '2,9p' "$0"
    ;;
  *)
    setup
    py -m pipeline "$@"
    ;;
esac
