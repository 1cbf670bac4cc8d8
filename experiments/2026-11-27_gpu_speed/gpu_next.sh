#!/usr/bin/env bash
# The GPU checks issue 12 still lacks, in parts that each fit one device call:
#   PART=train  `make train-gpu` (experiment=minividit_gpu) on the carried 40-scene mini-VIDIT
#               for TRAIN_TIME of fit (default 5 min), then its evaluation table and panels
#   PART=bench  `make bench-gpu`, every row (a failed row is recorded and the suite goes on),
#               with --resume into benchmarks/gpu-<GPU name>.json (a file per GPU: a call
#               may get an H200 instead of an H100): when one call does not finish it, copy
#               the returned file into benchmarks/ here, carry benchmarks too, and run the
#               part again: it measures only the missing rows (on a machine still warm the
#               file is still there: ignored files stay between calls). Its tables come
#               from `relight-bench table`, so a stopped suite has them too
#   PART=changes  what each training switch changes in training on the GPU (the suite's
#               `losses`, which the H200 file of 2026-11-28 predates): 32-true, bf16-mixed,
#               bf16-mixed-fused, bf16-mixed-fused-tuned (cuDNN's autotuner, eager: what
#               trainer.benchmark=true gains, cheaply) and bf16-mixed-graphs at the paper's
#               step, into benchmarks/gpu-changes-<GPU name>.json (resumable like `bench`)
#   PART=once   trainer=gpu with model.compile=true (its first step compiles for about
#               170 s on an H200) killed with -9 once it has written a step checkpoint, and
#               resumed by the same command (about 7 minutes on an H200)
#   PART=tools  on CUDA once: relight-eval in three execution modes, relight-predict
#               --device cuda with tiles, ONNX export of the CUDA-trained checkpoint, the
#               demo notebook's code cells (about 4 minutes). It uses the checkpoint `once`
#               left on this machine, else trains one eager epoch for one first (~1 min)
# Each part stops its steps within BUDGET s (default 560: a device call runs at most 600 s).
# Logs, tables and panels go to $OUT (checkpoints stay behind in $WORK_ROOT/<part>). On the
# GPU machine, carrying .gpu and data/minividit_gpu40 (git-ignored: render it here first
# with `relight-minividit data/minividit_gpu40 --train-scenes 40 --shifted-scenes 0`):
#   source .gpu/env.sh && PART=train bash experiments/2026-11-27_gpu_speed/gpu_next.sh
# DRY=1 runs the same plumbing on the CPU with a tiny network, in a few minutes, so a typo
# costs no device time:
#   DRY=1 PART=once OUT=/tmp/gpu-dry bash experiments/2026-11-27_gpu_speed/gpu_next.sh
set -u
: "${OUT:?set OUT to the folder for the logs}"
PART=${PART:?set PART to train, bench, changes, once or tools}
DATA=${DATA:-$PWD/data/minividit_gpu40}
WORK_ROOT=${WORK_ROOT:-/tmp/relight-gpu}
WORK=$WORK_ROOT/$PART  # a part's own: `tools` finds the checkpoint `once` left
TRAIN_TIME=${TRAIN_TIME:-00:00:05:00}
rm -rf "$WORK" && mkdir -p "$WORK" "$OUT"
if [ ! -f "$DATA/minividit.json" ]; then
    echo "no mini-VIDIT at $DATA: render it on the CPU machine (see README.md) and carry it" >&2
    exit 2
fi
data=(data.dataset_dir="$DATA" data.train_scenes=40 data.shifted_scenes_rendered=0)
device=cuda
tiny=()
if [ "${DRY:-0}" = 1 ]; then
    device=cpu
    tiny=(trainer=cpu model.net.encoder=resnet18 model.net.encoder_weights=none
        model.metrics.lpips_weights=none loss.perceptual=0.0 model.compile=false
        model.optimizer.fused=false data.image_size=64 data.batch_size=4 data.num_workers=0
        data.pin_memory=false data.persistent_workers=false trainer.max_epochs=2
        trainer.check_val_every_n_epoch=1 +trainer.limit_train_batches=6
        +trainer.limit_val_batches=2 callbacks.step_checkpoint.every_n_train_steps=2)
else
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/smi.txt"
fi
train=(python3 -m relight.train experiment=minividit_gpu "${data[@]}" paths.log_dir="$WORK/logs")

BUDGET=${BUDGET:-560}  # seconds for the whole part: one device call runs at most 600 s

KILL_AFTER=15  # s between timeout's SIGTERM and its SIGKILL: Lightning's SIGTERM handler
# stops only after the current batch, and a first compiled batch takes minutes

left() { echo $((BUDGET - SECONDS)); }  # seconds the part has left

step() {  # step NAME LIMIT_S COMMAND...: run within LIMIT_S and the part's BUDGET, log to $OUT/NAME.log
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    if [ $(($(left) - KILL_AFTER)) -lt "$limit" ]; then limit=$(($(left) - KILL_AFTER)); fi
    if [ "$limit" -lt 15 ]; then echo "$name: skipped, the part's ${BUDGET} s are spent"; return 124; fi
    timeout -k "$KILL_AFTER" "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "$name: rc=$rc in $((SECONDS - start)) s"
    grep -E "Error|error:|Traceback" "$OUT/$name.log" | tail -3
    return $rc
}

keep_run() {  # keep_run RUN_FOLDER NAME: the run's logs, tables and images, no checkpoints
    mkdir -p "$OUT/$2" && (cd "$1" && find . -type f ! -name '*.ckpt' -exec cp --parents {} "$OUT/$2/" \;)
}

case $PART in
train)
    step train-gpu 560 "${train[@]}" run_name=train_gpu trainer.max_time="$TRAIN_TIME" "${tiny[@]}"
    grep -E "Trained|items/s|S3Net|identity|psnr|ssim" "$OUT/train-gpu.log" | tail -14
    keep_run "$WORK/logs/train/latest" train-gpu
    ;;
bench)
    if [ "${DRY:-0}" = 1 ]; then
        json=$WORK/bench-dry.json
    else
        json=benchmarks/gpu-$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr -c 'A-Za-z0-9\n' '-').json
    fi
    mkdir -p "$(dirname "$json")"
    bench=(python3 -m relight.cli.bench suite --resume --output "$json" --table "$OUT/bench-gpu.md")
    if [ "${DRY:-0}" = 1 ]; then
        bench+=(--encoder resnet18 --sizes 64 --train-sizes 64 --checkpointing-size 64 --train-batch 1
            --repeats 1 --train-repeats 1 --gemm-n 128 --data-sizes --checkpoint none
            --minividit "$DATA")
    else
        bench+=(--profile gpu --minividit "$DATA")  # the carried one: no Mitsuba there
    fi
    step bench-gpu 560 "${bench[@]}"
    if [ "${DRY:-0}" = 1 ]; then  # the same again: every row is in the file, none measured
        step bench-resumed 120 "${bench[@]}"
        grep -E "^--resume" "$OUT/bench-resumed.log"
    fi
    cp "$json" "$OUT/" 2>/dev/null
    python3 -c "import json, sys; d = json.load(open(sys.argv[1])); print(sys.argv[1] + ':', len(d['records']), 'rows, complete:', d['complete'])" "$json"
    # the tables of what the file holds, also when the suite was stopped before it printed them
    python3 -m relight.cli.bench table "$json" --table "$OUT/bench-gpu.md" > /dev/null
    head -60 "$OUT/bench-gpu.md"
    ;;
changes)
    json=$WORK/changes-dry.json
    if [ "${DRY:-0}" != 1 ]; then
        json=benchmarks/gpu-changes-$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr -c 'A-Za-z0-9\n' '-').json
    fi
    mkdir -p "$(dirname "$json")"
    changes=(python3 -m relight.cli.bench suite --resume --output "$json" --sizes --no-accuracy
        --checkpointing-size 0 --train-modes 32-true bf16-mixed bf16-mixed-fused bf16-mixed-fused-tuned
        bf16-mixed-graphs)
    if [ "${DRY:-0}" = 1 ]; then
        changes+=(--encoder resnet18 --train-sizes 64 --train-batch 1 --train-repeats 1 --gemm-n 128 --data-sizes)
    else
        changes+=(--profile gpu)
    fi
    step bench-changes 560 "${changes[@]}"
    cp "$json" "$OUT/" 2>/dev/null
    python3 -m relight.cli.bench table "$json" --table "$OUT/bench-changes.md" > /dev/null
    grep -A8 "What each training mode changes" "$OUT/bench-changes.md"
    ;;
once)
    # trainer=gpu with model.compile=true (the experiment's default), killed with -9 once a
    # step checkpoint is complete (a second one has started, or 30 s have passed since the
    # first appeared); the same command then resumes from it. Checkpoints every 2 steps:
    # the first compiled step takes minutes, and then a few steps fit before the kill.
    killed=("${train[@]}" run_name=killed trainer.max_epochs=4 "${tiny[@]}"
        callbacks.step_checkpoint.every_n_train_steps=2)
    RESUME_MIN=${RESUME_MIN:-200}  # s kept for the resumed run (its compile hits the cache)
    wait_s=$(($(left) - RESUME_MIN))
    if [ "$wait_s" -gt 330 ]; then wait_s=330; fi
    if [ "$wait_s" -lt 30 ]; then echo "killed-first: skipped, $(left) s left"; exit 124; fi
    start=$SECONDS
    "${killed[@]}" > "$OUT/killed-first.log" 2>&1 &
    pid=$!
    checkpoints() { ls "$WORK"/logs/train/killed/*/checkpoints/step_*.ckpt 2>/dev/null | wc -l; }
    first=
    while kill -0 $pid 2>/dev/null && [ $((SECONDS - start)) -lt "$wait_s" ]; do
        n=$(checkpoints)
        if [ "$n" -ge 1 ] && [ -z "$first" ]; then first=$SECONDS; fi
        if [ "$n" -ge 2 ] || { [ -n "$first" ] && [ $((SECONDS - first)) -ge 30 ]; }; then break; fi
        sleep 1
    done
    if kill -9 $pid 2>/dev/null; then
        echo "killed-first: killed -9 after $((SECONDS - start)) s: $(ls "$WORK"/logs/train/killed/*/checkpoints/ 2>/dev/null | tr '\n' ' ')"
    else
        wait $pid
        echo "killed-first: ended by itself, rc=$?, after $((SECONDS - start)) s (not killed)"
    fi
    wait $pid 2>/dev/null
    grep -E "Error|error:|Traceback" "$OUT/killed-first.log" | tail -3
    if [ "$(checkpoints)" -eq 0 ]; then
        echo "killed-first: FAILED: no step checkpoint within ${wait_s} s, so nothing to resume from;" \
            "not running killed-resumed (it would start afresh, not test resuming)"
        exit 1
    fi
    step killed-resumed 300 "${killed[@]}"
    rc=$?
    grep -E "resuming from|Trained|identity" "$OUT/killed-resumed.log" | tail -5
    if grep -q "resuming from" "$OUT/killed-resumed.log"; then
        echo "killed-resumed: resumed from a step checkpoint (rc=$rc)"
    else
        echo "killed-resumed: FAILED: it did not resume (no 'resuming from' in its log)"
        rc=1
    fi
    keep_run "$WORK/logs/train/latest" killed-resumed
    exit $rc
    ;;
tools)
    # 1. a CUDA-trained checkpoint: the one `once` left on this machine, else one eager epoch
    ckpt=$WORK_ROOT/once/logs/train/latest/checkpoints/best.ckpt
    if [ -f "$ckpt" ]; then
        echo "tools: the checkpoint of PART=once: $(readlink -f "$ckpt")"
    else
        step train-eager 150 "${train[@]}" run_name=tools model.compile=false \
            trainer.max_epochs=1 trainer.check_val_every_n_epoch=1 "${tiny[@]}"
        ckpt=$WORK/logs/train/latest/checkpoints/best.ckpt
        [ -f "$ckpt" ] || { echo "tools: no checkpoint, nothing to run"; exit 1; }
    fi
    # 2. relight-eval of that checkpoint in three execution modes
    for mode in eager-fp32 bf16-cl bf16-cl-compile; do
        [ $device = cpu ] && [ $mode = bf16-cl-compile ] && continue
        step "eval-$mode" 120 python3 -m relight.cli.eval ckpt_path="$ckpt" device=$device \
            "${data[@]}" mode=$mode paths.log_dir="$WORK/logs" save_images=false
        grep -E "S3Net|identity" "$OUT/eval-$mode.log" | tail -2
    done
    # 3. relight-predict on the device: one pair enlarged to 2048x2048, over --max-pixels,
    #    so it runs in tiles (the depth maps keep their size: they are resized to the input)
    pairs=$DATA/validation
    python3 - "$pairs" "$WORK/big" <<'PY'
import sys
from pathlib import Path
from PIL import Image
pairs, out = Path(sys.argv[1]), Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
for name in ("input", "guide"):
    image = Image.open(pairs / name / "Pair000.png").convert("RGB")
    image.resize((2048, 2048), Image.BICUBIC).save(out / f"{name}.png")
PY
    step predict-tiles 90 python3 -m relight.cli.predict --checkpoint "$ckpt" --device $device \
        --input "$WORK/big/input.png" --input-depth "$pairs/input/Pair000.npy" \
        --guide "$WORK/big/guide.png" --guide-depth "$pairs/guide/Pair000.npy" \
        --max-pixels 1000000 --large tile --precision auto --output "$WORK/predict-tiles.png"
    tail -3 "$OUT/predict-tiles.log"
    python3 -c "from PIL import Image; Image.open('$WORK/predict-tiles.png').resize((512, 512)).save('$OUT/predict-tiles-512.png')"
    # 4. ONNX export of the CUDA-trained checkpoint, checked in onnxruntime
    step export-onnx 90 python3 -m relight.cli.export --checkpoint "$ckpt" \
        --output "$WORK/s3net.onnx" --verify
    tail -2 "$OUT/export-onnx.log"
    # 5. the demo notebook's code cells, in order, in one Python (no Jupyter there). The GPU
    #    image has no IPython: a stand-in IPython.display (here too, so a dry run checks
    #    it) saves each displayed picture to $OUT
    RELIGHT_CKPT=$ckpt RELIGHT_PAIRS=$pairs RELIGHT_SIZE=128 MPLBACKEND=Agg NOTEBOOK_OUT=$OUT \
        step notebook 90 python3 - <<'PY'
import json
import os
import sys
import types

shown = []


def display(picture):
    path = os.path.join(os.environ["NOTEBOOK_OUT"], f"notebook-{len(shown)}.png")
    picture.save(path)
    shown.append(path)
    print("display:", os.path.basename(path), picture.size)


module = types.ModuleType("IPython.display")
module.display = display
package = types.ModuleType("IPython")
package.display = module
sys.modules.update({"IPython": package, "IPython.display": module})
cells = json.load(open("notebooks/demo.ipynb"))["cells"]
scope: dict = {}
for cell in cells:
    if cell["cell_type"] == "code":
        exec(compile("".join(cell["source"]), "demo.ipynb", "exec"), scope)
print(f"notebook: every code cell ran, {len(shown)} pictures displayed")
PY
    tail -2 "$OUT/notebook.log"
    ;;
*)
    echo "PART must be train, bench, changes, once or tools" >&2
    exit 2
    ;;
esac
