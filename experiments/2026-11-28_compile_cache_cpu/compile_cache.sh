#!/usr/bin/env bash
# The first training step of a compiled S3Net (the paper's model and full loss, the bench's
# bf16-mixed-compile row at 64², batch 1) with an empty torch.compile cache, then again
# in a new process with the cache the first run filled.
#   bash experiments/2026-11-28_compile_cache_cpu/compile_cache.sh [DEVICE]
set -eu
device=${1:-cpu}
export TORCHINDUCTOR_CACHE_DIR
TORCHINDUCTOR_CACHE_DIR=$(mktemp -d /tmp/relight-inductor-XXXX)
spec='{"bench": "train", "device": "'$device'", "encoder": "res2net101d", "size": 64, "batch": 1,
  "repeats": 1, "warmup": 2, "precision": "bf16-mixed", "channels_last": false, "fused": true,
  "compile": "default", "checkpointing": false, "threads": 2}'
for run in empty filled; do
    python3 -m relight.bench.worker "$spec" 2>/dev/null | grep '^RECORD' | python3 -c "
import json, sys
r = json.loads(sys.stdin.read()[len('RECORD '):])
print(f'$run cache: first step {r[\"first_step_s\"]} s, then {r[\"median_s\"]} s a step')"
done
echo "cache: $(du -sh "$TORCHINDUCTOR_CACHE_DIR" | cut -f1) in $TORCHINDUCTOR_CACHE_DIR"
rm -rf "$TORCHINDUCTOR_CACHE_DIR"
