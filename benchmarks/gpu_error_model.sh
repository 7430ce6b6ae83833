#!/usr/bin/env bash
# An error model fitted at CamVid full resolution, played against margin, entropy and the scale-0.5 model on
# the same seeds: the run docs/benchmark_camvid.md ("Second GPU session") left for the next GPU session. Made for
# the bare, offline GPU machine of benchmarks/gpu_camvid.sh (same pack, same wheels); about 5 minutes there.
#
#   bash benchmarks/gpu_error_model.sh [RESULTS_DIR]
set -u -o pipefail
RESULTS=${1:-${OUT:-results/gpu_error_model}}
source benchmarks/gpu_prelude.sh
mkdir -p "$RESULTS"
[ -f "$WORK/camvid/ralis_splits.json" ] || python3 benchmarks/camvid_pack.py unpack "$PACK" "$WORK/camvid" || exit 1
EK=("data_root=$WORK/camvid" scale=1.0)
# train mode (pool D_T), episode seeds 0-2, as the scale-0.5 model was fitted
timeout 150 python3 -m experiments.error_model --env SegAL-CamVid-v0 --env-kwargs "${EK[@]}" device=cuda \
    --out "$RESULTS/camvid_full_error_model.npz" 2>&1 | tee "$RESULTS/fit.log"
timeout 360 python3 evaluate.py --env SegAL-CamVid-v0 --env-kwargs "${EK[@]}" --policies entropy margin \
    "error_full=$RESULTS/camvid_full_error_model.npz" error_half=docs/oracle_camvid/error_model/camvid_error_model.npz \
    --seeds 3 --budgets 480 960 --final-training --device cuda --workers 12 --no-plots --no-progress \
    --out "$WORK/error_model_full" 2>&1 | tee "$RESULTS/evaluate.log"
tar czf "$RESULTS/error_model_full.tgz" -C "$WORK/error_model_full" .
