#!/usr/bin/env bash
# The CamVid benchmark on a 2-core CPU (docs/benchmark_camvid.md): scale 0.5 (180x240 images, the paper's
# 90x80 regions scaled to 45x40, K=24), random / entropy / BALD in test mode with 3 seeds and the final
# training (start set D_T + acquired regions) at every budget. WITH_DQN=1 first trains a BatchDQN on
# train mode (train.py's defaults: two envs of one torch thread each, starting from margin_balance's ranking) and
# benchmarks it too, beside margin.
#
#   bash benchmarks/camvid_cpu.sh [CAMVID_ROOT] [OUT_DIR]
#
# Both stages resume: train.py from its newest checkpoint, evaluate.py by skipping finished runs.
set -euo pipefail
ROOT=${1:-../shared/data/camvid}
OUT=${2:-results/camvid-cpu}
ENV_KWARGS=(data_root="$ROOT" scale=0.5 'region_size=[45,40]')
POLICIES=(random entropy bald)

if [ "${WITH_DQN:-0}" = 1 ]; then
    RESUME=()
    if compgen -G "$OUT/dqn/checkpoints/*.zip" > /dev/null; then RESUME=(--resume); fi
    if [ ! -f "$OUT/dqn/model.zip" ]; then
        python train.py --env SegAL-CamVid-v0 --env-kwargs "${ENV_KWARGS[@]}" --timesteps 200 --checkpoint-freq 40 \
            --threads 1 --no-compare --no-progress-bar --out "$OUT/dqn" "${RESUME[@]}"
    fi
    POLICIES+=(margin "dqn=$OUT/dqn/model.zip")  # margin: the rule the agent starts from
fi
python evaluate.py --env SegAL-CamVid-v0 --env-kwargs "${ENV_KWARGS[@]}" \
    --policies "${POLICIES[@]}" --seeds 3 --budgets 192 384 576 768 \
    --final-training --workers 2 --threads 1 --no-progress --out "$OUT/benchmark"
