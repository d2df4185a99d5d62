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

# GPUs torch can use; fails loudly when nvidia-smi sees GPUs that torch cannot (driver too old for the
# wheel's CUDA, a CPU-only torch): a silent CPU run of a GPU job would take days. PRESET=cpu-demo overrides.
gpu_count() {
  local torch_gpus smi_gpus=0
  torch_gpus=$(py -c "import torch; print(torch.cuda.device_count())")
  if command -v nvidia-smi >/dev/null 2>&1; then
    smi_gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  fi
  if [ "$smi_gpus" -gt 0 ] && [ "$torch_gpus" -eq 0 ] && [ -z "${PRESET:-}" ]; then
    local why
    why=$(py -c "import torch; print(f'torch {torch.__version__} built for CUDA {torch.version.cuda}')")
    echo "error: nvidia-smi lists $smi_gpus GPU(s) but torch sees none ($why; driver: $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1))." >&2
    echo "       Install a torch build that matches the driver, or run PRESET=cpu-demo ./run.sh to train on the CPU anyway." >&2
    exit 1
  fi
  echo "$torch_gpus"
}
TIMINGS=""
timed() {  # run a command; append "NAME seconds" to $TIMINGS
  local name=$1 started=$SECONDS
  shift
  "$@"
  [ -n "$TIMINGS" ] && echo "$name $((SECONDS - started))" >> "$TIMINGS"
  return 0
}
stage() { echo; echo "== $* =="; timed "$1" py -m pipeline "$@"; }

main_job() {
  local force=0
  [ "${1:-}" = "--force" ] && force=1
  local started=$SECONDS
  TIMINGS=$(mktemp)
  trap 'rm -f "$TIMINGS"' EXIT
  if [ ! -f "$DATA/train.csv" ]; then
    stage synth --out "$DATA" --train "$DEMO_TRAIN" --test "$DEMO_TEST" --seed 0
  fi
  if [ $force = 1 ]; then stage prep --data "$DATA" --force; else stage prep --data "$DATA"; fi
  if [ $force = 1 ]; then stage folds --data "$DATA" --k 5 --force; else stage folds --data "$DATA" --k 5; fi

  local gpus preset
  gpus=$(gpu_count)
  preset=${PRESET:-$([ "$gpus" -gt 0 ] && echo gpu-full || echo cpu-demo)}
  echo; echo "== preset: $preset ($gpus GPU(s) visible to torch) =="
  local run=${RUN:-$preset}
  local sets=() part parts=()
  IFS=';' read -ra parts <<<"${SET:-}"
  for part in ${parts[@]+"${parts[@]}"}; do
    if [ -n "$part" ]; then sets+=(--set "$part"); fi
  done
  if [ ${#sets[@]} -gt 0 ]; then echo "== overrides: ${SET} (run $run) =="; fi
  [ $force = 1 ] && rm -rf "runs/$run"
  if [ "$gpus" -gt 1 ]; then
    echo; echo "== train (torchrun, $gpus GPUs) =="
    timed train py -m torch.distributed.run --standalone --nproc_per_node="$gpus" \
      -m pipeline -- train --config "$preset" --run "$run" --data "$DATA" --resume ${sets[@]+"${sets[@]}"}
  else
    stage train --config "$preset" --run "$run" --data "$DATA" --resume ${sets[@]+"${sets[@]}"}
  fi
  if [ $force = 1 ]; then stage infer --run "$run" --force; else stage infer --run "$run"; fi

  local submission output
  submission=$(ls -t submissions/"$run"-*.csv 2>/dev/null | head -n 1 || true)
  if [ $force = 1 ] || [ -z "$submission" ] || [ "runs/$run/test_probs.npy" -nt "$submission" ]; then
    echo; echo "== submit =="
    output=$(timed submit py -m pipeline submit --run "$run")  # an identical submission is not written twice
    echo "$output"
    submission=$(tail -n 1 <<<"$output")
  else
    echo; echo "== submit == $submission is up to date"
  fi
  local score="(no truth file: the real competition scores on Kaggle)"
  if [ -f "$DATA/test_truth.csv" ]; then
    echo; echo "== evaluate =="
    output=$(timed evaluate py -m pipeline evaluate --submission "$submission" --truth "$DATA/test_truth.csv")
    echo "$output"
    score=$(tail -n 1 <<<"$output")
  fi
  echo "total $((SECONDS - started))" >> "$TIMINGS"
  echo
  py -m pipeline summary --run "$run" --submission "$submission" --truth "$DATA/test_truth.csv" --timings "$TIMINGS"
  if [ $force = 1 ]; then stage report --run "$run" --force; else stage report --run "$run"; fi
  echo "done in $((SECONDS - started)) s"
  echo "local test $score"
  echo "submission: $submission"
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
    gpu_count
    ;;
  -h|--help)
    sed -n '2,9p' "$0"
    ;;
  *)
    setup
    py -m pipeline "$@"
    ;;
esac
