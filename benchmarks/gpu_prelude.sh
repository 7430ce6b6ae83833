# Sourced by the GPU scripts (gpu_camvid.sh, gpu_error_model.sh): the work folder and cache on the bare machine,
# the CamVid pack's place, and gymnasium/SB3 from the carried wheels (.whl/) where the machine lacks them.
WORK=/tmp/gpu_camvid
PACK=${SEGAL_CAMVID_PACK:-.camvid-pack}
mkdir -p "$WORK"
export PYTHONUNBUFFERED=1 SEGAL_CACHE_DIR=$WORK/cache
if ! python3 -c "import gymnasium, stable_baselines3" 2>/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" .whl/*.whl || exit 1
    export PYTHONPATH=$WORK/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
