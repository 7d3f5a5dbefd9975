#!/usr/bin/env bash
# One prepared check of neuronlab on a GPU machine without network, in at most 6 minutes.
#
#   scripts/device_check.sh --prepare   # beforehand, on a networked machine: wheels + Fashion-MNIST -> .whl/
#   scripts/device_check.sh             # on the GPU machine, from the repository root (CPU mode if no GPU)
#   scripts/device_check.sh --cpu       # force the CPU mode: 1 epoch, a quick benchmark (to test the script)
#   scripts/device_check.sh --graphs    # only the CUDA-graph block (#25): its GPU tests and benchmark rows
#
# The GPU machine has Python 3.12, torch, Lightning, torchmetrics, TensorBoard, matplotlib, rich, pillow
# (and onnx) but not Hydra: --prepare downloads what neuronlab-train, the tests and the benchmark import
# beyond that (WHEELS below, the one list) and packs the four Fashion-MNIST .gz files beside them. The
# check installs only the wheels whose module is missing, from those files only, into /tmp/site, then
# runs the GPU tests, `neuronlab-train experiment=mnist data=fashion_mnist trainer=gpu` for 3 epochs with
# data.steps_per_execution=1 and the default, and in bf16-mixed, a two-job joblib grid with trainer=gpu
# (one job per GPU: which device each job used), and the benchmark's GPU rows. Everything
# goes to one folder: $OUT if set, else outputs/device_check/ (report.md, logs, benchmark.json).
set -uo pipefail

# name==version  import-name   (torchvision must match the GPU machine's torch: 0.26 for torch 2.11)
WHEELS=(
  "hydra-core==1.3.8 hydra"
  "omegaconf==2.3.1 omegaconf"
  "antlr4-python3-runtime==4.9.3 antlr4"
  "torchvision==0.26.0 torchvision"
  "pytest==9.2.0 pytest"
  "pluggy==1.7.0 pluggy"
  "iniconfig==2.3.1 iniconfig"
  "hydra-joblib-launcher==1.2.0 hydra_plugins.hydra_joblib_launcher"
  "joblib==1.6.0 joblib"
)
WHEEL_DIR=.whl
DATA_DIR=$WHEEL_DIR/data
FASHION_SOURCE=${FASHION_DIR:-/usr/share/datasets/fashion-mnist}
FASHION_FILES=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
PY=${PYTHON:-python3}

cd "$(dirname "$0")/.." || exit 1

prepare() {
  mkdir -p "$WHEEL_DIR" "$DATA_DIR"
  local spec
  for entry in "${WHEELS[@]}"; do
    spec=${entry%% *}
    # binary wheels for the GPU machine (CPython 3.12, x86_64 Linux); a pure-Python project published
    # only as an sdist (antlr4-python3-runtime) is built into a wheel here
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform any -d "$WHEEL_DIR" "$spec" 2>/dev/null \
      || "$PY" -m pip wheel -q --no-deps -w "$WHEEL_DIR" "$spec" \
      || { echo "error: could not download $spec" >&2; exit 1; }
  done
  for f in "${FASHION_FILES[@]}"; do
    [ -f "$FASHION_SOURCE/$f" ] || {
      echo "error: $FASHION_SOURCE/$f not found: apt-get install dataset-fashion-mnist, or set FASHION_DIR" >&2
      exit 1
    }
    cp "$FASHION_SOURCE/$f" "$DATA_DIR/"
  done
  du -sh "$WHEEL_DIR"
  ls -l "$WHEEL_DIR" "$DATA_DIR"
}

if [ "${1:-}" = "--prepare" ]; then
  prepare
  exit 0
fi

REPORT=${OUT:-outputs/device_check}
mkdir -p "$REPORT"
REPORT=$(cd "$REPORT" && pwd)
MD=$REPORT/report.md
START=$(date +%s)
FAILED=0

note() { echo "$*" | tee -a "$MD"; }
# step NAME SECONDS COMMAND...: run with a time limit, log to $REPORT/NAME.log, note the outcome
step() {
  local name=$1 limit=$2 t0 rc
  shift 2
  t0=$(date +%s)
  timeout "$limit" "$@" >"$REPORT/$name.log" 2>&1
  rc=$?
  [ "$rc" -eq 0 ] || FAILED=1
  [ -n "${STEP_QUIET:-}" ] || note "- $name: exit $rc in $(($(date +%s) - t0)) s (log: $name.log)"
  return "$rc"
}

[ -d "$WHEEL_DIR" ] && [ -f "$DATA_DIR/${FASHION_FILES[0]}" ] || {
  echo "error: $WHEEL_DIR/ is missing or incomplete: run scripts/device_check.sh --prepare on a networked machine first" >&2
  exit 2
}

# install, from the files only, what this Python lacks
SITE=/tmp/site
mkdir -p "$SITE"
missing=()
for entry in "${WHEELS[@]}"; do
  spec=${entry%% *}
  module=${entry##* }
  "$PY" -c "import $module" 2>/dev/null && continue
  name=${spec%%==*}
  wheel=$(ls "$WHEEL_DIR"/"${name//-/_}"-*.whl 2>/dev/null | head -1)
  [ -n "$wheel" ] || { echo "error: no wheel for $spec in $WHEEL_DIR/" >&2; exit 2; }
  missing+=("$wheel")
done
if [ "${#missing[@]}" -gt 0 ]; then
  "$PY" -m pip install -q --no-index --no-deps --target "$SITE" "${missing[@]}" || exit 2
fi
export PYTHONPATH=$SITE:$PWD/src${PYTHONPATH:+:$PYTHONPATH}
export NEURONLAB_OUTPUT_ROOT=$REPORT/outputs
export PYTHONUNBUFFERED=1

GPU=1
if [ "${1:-}" = "--cpu" ] || ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  GPU=0
fi
if [ "$GPU" = 1 ]; then
  TRAINER=trainer=gpu EPOCHS=3 SLOW=1 BENCH=(--device cuda --variants bf16 --epochs 2 --side-epochs 3 --repeats 1)
else  # a laptop or a shared CPU box: fewer epochs, longer limits
  TRAINER=trainer=cpu EPOCHS=1 SLOW=4 BENCH=(--quick)
fi

{
  echo "# neuronlab device check ($(date -u '+%Y-%m-%d %H:%M UTC'), $([ "$GPU" = 1 ] && echo GPU || echo CPU) mode)"
  echo
  echo '```'
  "$PY" - <<'EOF'
import platform, torch, lightning
print("python", platform.python_version(), "| torch", torch.__version__, "| lightning", lightning.__version__)
print("cuda", torch.version.cuda, "| GPU:", torch.cuda.get_device_name() if torch.cuda.is_available() else "none")
print("cpu threads", torch.get_num_threads(), "|", platform.machine(), platform.platform())
EOF
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  echo "installed from $WHEEL_DIR/: ${missing[*]:-nothing (all present)}"
  echo '```'
  echo
} >"$MD"

# ---- CUDA graphs (#25, tasks/graphs.py) -------------------------------------------------------------
# The GPU tests of GraphClassifier (pytest -k gpu), then `benchmark.py --graphs`: the bare loop, neuronlab
# eager at K=16, captured at K=16 and K=64 (3 epochs x 3 seeds; peak GPU memory), and the whole
# `neuronlab-train experiment=mnist trainer=gpu` run (5 epochs, test) against scripts/lesson_mnist.py.
# About 4 minutes on an H100; `--graphs` runs only this block (the whole check is longer than one call).
graphs_check() {
  local args=(--device cuda --seeds 3 --epochs 3)
  [ "$GPU" = 1 ] || args=(--device cpu --seeds 1 --epochs 2)
  note ""
  step graphs_gpu_tests $((150 * SLOW)) "$PY" -m pytest -q -rs -p no:cacheprovider tests/tasks/test_graphs.py -k gpu -s
  grep -E "peak GPU memory|passed|failed|skipped" "$REPORT/graphs_gpu_tests.log" | sed 's/^/    /' >>"$MD"
  step graphs_benchmark $((360 * SLOW)) "$PY" scripts/benchmark.py --graphs --data fashion_mnist \
    --data-dir "$DATA_DIR" "${args[@]}" --json "$REPORT/graphs.json"
  {
    echo '```'
    sed -n '/seeds —/,$p' "$REPORT/graphs_benchmark.log"
    echo '```'
  } >>"$MD"
}
if [ "${1:-}" = "--graphs" ]; then
  graphs_check
  note ""
  note "total: $(($(date +%s) - START)) s; $([ "$FAILED" = 0 ] && echo 'all steps passed' || echo 'SOME STEPS FAILED: see the logs')"
  echo "report: $MD"
  exit "$FAILED"
fi
# ---- end of the CUDA-graph block (it also runs below, after the benchmark) ----------------------------

step import 60 "$PY" -c "import neuronlab.train, neuronlab.tasks, neuronlab.run.figures; print('ok')"
step help 60 "$PY" -m neuronlab.train --help

# the GPU tests: every test that skips without CUDA (they also run, and skip, in CPU mode)
step gpu_tests $((150 * SLOW)) "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_ddp.py tests/test_train.py -k "gpu"
tail -3 "$REPORT/gpu_tests.log" | sed 's/^/    /' >>"$MD"

DATA=(experiment=mnist data=fashion_mnist "paths.data_dir=$PWD/$DATA_DIR" data.download=false "$TRAINER" "trainer.max_epochs=$EPOCHS")
note ""
note "| run (log: train_<run>.log) | exit | wall time | val/acc | test/acc |"
note "|---|---|---|---|---|"
for run in "k1 data.steps_per_execution=1" "default_k" "bf16 trainer.precision=bf16-mixed"; do
  name=${run%% *}
  extra=()
  [ "$name" != "$run" ] && extra=("${run#* }")
  t0=$(date +%s)
  STEP_QUIET=1 step "train_$name" $((100 * SLOW)) "$PY" -m neuronlab.train "${DATA[@]}" "${extra[@]}" \
    "hydra.run.dir=$REPORT/outputs/$name"
  "$PY" - "$REPORT/outputs/$name/result.json" "$name" "$?" "$(($(date +%s) - t0))" >>"$MD" <<'EOF'
import json, sys
try:
    m = json.load(open(sys.argv[1])).get("metrics", {})
except OSError:
    m = {}
f = lambda k: f"{m[k] * 100:.2f}%" if k in m else "-"
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} s | {f('val/acc')} | {f('test/acc')} |")
EOF
done

# one sweep job per GPU: a two-job grid on the joblib launcher; each job's device slot(s), and the GPU
# Lightning reports using (CPU mode: two fake slots, trained on the CPU)
note ""
GRID=$REPORT/outputs/grid
if [ "$GPU" = 1 ]; then GRID_ENV=(); GRID_TRAINER=trainer=gpu; else GRID_ENV=(NEURONLAB_FAKE_DEVICES=0,1); GRID_TRAINER=trainer=default; fi
step gpu_grid $((90 * SLOW)) env "${GRID_ENV[@]}" "$PY" -m neuronlab.train -m hydra/launcher=joblib \
  hydra.launcher.n_jobs=2 "$GRID_TRAINER" optimizer.lr=0.1,0.05 trainer.max_epochs=30 "hydra.sweep.dir=$GRID"
{
  echo '```'
  grep -h "device slots:" "$REPORT/gpu_grid.log"
  for job in "$GRID"/[0-9]*/; do
    "$PY" - "$job" <<'EOF'
import json, sys
from pathlib import Path
job = Path(sys.argv[1])
env = json.loads((job / "environment.json").read_text()) if (job / "environment.json").is_file() else {}
log = (job / "train.log").read_text() if (job / "train.log").is_file() else ""
used = [line.split(" - ", 1)[-1] for line in log.splitlines() if "CUDA_VISIBLE_DEVICES" in line or "device slots" in line]
print(f"{job.name}: slots {env.get('devices')}, CUDA_VISIBLE_DEVICES={env.get('cuda_visible_devices')}; {'; '.join(used)}")
EOF
  done
  echo '```'
} >>"$MD"

note ""
step benchmark "${BENCH_LIMIT:-$((210 * SLOW))}" "$PY" scripts/benchmark.py --data fashion_mnist --data-dir "$DATA_DIR" "${BENCH[@]}" \
  --json "$REPORT/benchmark.json"
{
  echo '```'
  sed -n '/epochs for accuracy/,$p' "$REPORT/benchmark.log"
  echo '```'
} >>"$MD"
graphs_check  # the CUDA-graph block above (#25)
note ""
note "total: $(($(date +%s) - START)) s; $([ "$FAILED" = 0 ] && echo 'all steps passed' || echo 'SOME STEPS FAILED: see the logs')"
echo "report: $MD"
exit "$FAILED"
