#!/usr/bin/env bash
# One device call: the parts of gpu_next.sh named in PARTS, in order, sharing CALL_BUDGET
# seconds (a device call runs at most 600 s). `train` gets what the parts before it left,
# less TRAIN_MARGIN s for building, evaluating and the panels after its fit, and is skipped
# with under TRAIN_MIN s. A call returns at most 8 files, so everything the parts write is
# packed into $OUT/results.tgz, after every part and every PACK_EVERY s while one runs (a
# call killed at its limit returns what its $OUT holds then); the bench JSONs and tables
# are also copied beside it (the suite's file in benchmarks/ too, as it grows).
#   source .gpu/env.sh && PARTS="bench train" bash experiments/2026-11-27_gpu_speed/gpu_call.sh
# DRY=1 (see gpu_next.sh) runs the same on the CPU.
set -u
: "${OUT:?set OUT to the folder for the logs}"
CALL_BUDGET=${CALL_BUDGET:-570}
TRAIN_MARGIN=${TRAIN_MARGIN:-150}
TRAIN_MIN=${TRAIN_MIN:-240}
PACK_EVERY=${PACK_EVERY:-30}
here=$(dirname "$0")
final=$OUT
stage=${STAGE:-/tmp/gpu-call-out}
rm -rf "$stage" && mkdir -p "$stage" "$final"

pack() {  # what the parts wrote so far into $final (results.tgz replaced whole, never half)
    mkdir -p "$stage/benchmarks"
    cp benchmarks/gpu-*.json "$stage/benchmarks/" 2>/dev/null
    cp "$stage"/bench/*.json "$stage"/changes/*.json "$stage"/*/bench-*.md "$final/" 2>/dev/null
    local part=$final/.results-$BASHPID.tgz  # the packer's and the loop's never meet
    tar czf "$part" -C "$stage" . 2>/dev/null && mv -f "$part" "$final/results.tgz"
    rm -f "$part"
}

(while sleep "$PACK_EVERY"; do pack; done) &
packer=$!
for part in ${PARTS:-bench train}; do
    left=$((CALL_BUDGET - SECONDS))
    if [ "$part" = train ]; then
        if [ "$left" -lt "$TRAIN_MIN" ]; then echo "train: skipped, $left s left"; continue; fi
        fit=$((left - TRAIN_MARGIN))
        export TRAIN_TIME
        TRAIN_TIME=$(printf '00:00:%02d:%02d' $((fit / 60)) $((fit % 60)))
        echo "train: fit for $TRAIN_TIME"
    fi
    if [ "$left" -lt 30 ]; then echo "$part: skipped, $left s left"; continue; fi
    mkdir -p "$stage/$part"
    OUT=$stage/$part BUDGET=$left PART=$part bash "$here/gpu_next.sh" 2>&1 | tee "$stage/$part.console"
    pack
done
kill "$packer" 2>/dev/null
wait "$packer" 2>/dev/null
pack
ls -la "$final"
echo "call: $SECONDS s"
