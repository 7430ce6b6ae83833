#!/usr/bin/env bash
# CamVid at full resolution on a GPU: env step times (train and test mode), a short timed protocol run, and the
# scale-0.5 step for comparison with the CPU tables. Made for a bare, offline GPU machine that gets this
# repository plus a packed CamVid copy (benchmarks/camvid_pack.py) and, where gymnasium/SB3 are missing, wheels:
#
#   python benchmarks/camvid_pack.py pack ../shared/data/camvid .camvid-pack     # here, once
#   bash benchmarks/gpu_camvid.sh [RESULTS_DIR]                                   # there
#
# Every section has its own time limit; results (JSON + markdown + logs) are re-archived after each section
# into RESULTS_DIR/results.tgz, so a section that runs out of time loses only itself.
set -u -o pipefail
RESULTS=${1:-${OUT:-results/gpu_camvid}}
source benchmarks/gpu_prelude.sh
mkdir -p "$RESULTS" "$WORK/out"

archive() { tar czf "$RESULTS/results.tgz" -C "$WORK/out" . ; }
section() {  # section NAME SECONDS COMMAND...: run with a limit, log to out/NAME.log, record its wall time
    local name=$1 limit=$2; shift 2
    local start=$SECONDS
    echo "== $name (limit ${limit}s)"
    timeout "$limit" "$@" 2>&1 | tee "$WORK/out/$name.log"
    local rc=$?
    echo "$name rc=$rc wall_s=$((SECONDS - start))" | tee -a "$WORK/out/sections.txt"
    archive
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc;
  python3 -c "import torch, gymnasium; print('torch', torch.__version__, 'gymnasium', gymnasium.__version__)"; } \
    > "$WORK/out/machine.txt" 2>&1
cat "$WORK/out/machine.txt"

[ -f "$WORK/camvid/ralis_splits.json" ] || section unpack 60 python3 benchmarks/camvid_pack.py unpack "$PACK" "$WORK/camvid"
step=(python3 benchmarks/env_step.py --camvid "$WORK/camvid" --skip-synthetic --device cuda --steps 12)
section step_full_train 150 "${step[@]}" --camvid-scale 1.0 --mode train --out "$WORK/out/env_step_full_train"
section step_full_test 80 "${step[@]}" --camvid-scale 1.0 --mode test --out "$WORK/out/env_step_full_test"
# the benchmark_camvid.md protocol at full resolution, one seed, two budgets: a timing, not a comparison
section protocol 150 python3 evaluate.py --env SegAL-CamVid-v0 --env-kwargs "data_root=$WORK/camvid" scale=1.0 \
    --policies random entropy margin --seeds 1 --budgets 480 960 --final-training --device cuda --workers 3 \
    --no-plots --no-progress --out "$WORK/out/protocol_full"
section step_half_train 120 "${step[@]}" --camvid-scale 0.5 --mode train --out "$WORK/out/env_step_half_train"
