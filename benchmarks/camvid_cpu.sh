#!/usr/bin/env bash
# The CamVid benchmark on a 2-core CPU (docs/benchmark_camvid.md): scale 0.5 (180x240 images, the paper's
# 90x80 regions scaled to 45x40, K=24), a BatchDQN trained on train mode, then random / entropy / BALD /
# the DQN in test mode with 3 seeds and the paper's final training to convergence at every budget.
#
#   bash benchmarks/camvid_cpu.sh [CAMVID_ROOT] [OUT_DIR]
#
# Both stages resume: train.py from its newest checkpoint, evaluate.py by skipping finished runs.
set -euo pipefail
ROOT=${1:-../shared/data/camvid}
OUT=${2:-results/camvid-cpu}
ENV_KWARGS=(data_root="$ROOT" scale=0.5 'region_size=[45,40]')

RESUME=()
if compgen -G "$OUT/dqn/checkpoints/*.zip" > /dev/null; then RESUME=(--resume); fi
if [ ! -f "$OUT/dqn/model.zip" ]; then
    python train.py --env SegAL-CamVid-v0 --env-kwargs "${ENV_KWARGS[@]}" --timesteps 200 --checkpoint-freq 40 \
        --threads 2 --no-compare --no-progress-bar --out "$OUT/dqn" "${RESUME[@]}"
fi
python evaluate.py --env SegAL-CamVid-v0 --env-kwargs "${ENV_KWARGS[@]}" final_max_epochs=8 final_patience=2 \
    --policies random entropy bald "dqn=$OUT/dqn/model.zip" --seeds 3 --budgets 192 384 576 768 \
    --final-training --workers 2 --threads 1 --no-progress --out "$OUT/benchmark"
