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
#   PART=once   everything on CUDA once: trainer=gpu with model.compile=true killed with -9
#               and resumed by the same command, relight-eval in three execution modes,
#               relight-predict --device cuda with tiles, ONNX export of the CUDA-trained
#               checkpoint, the demo notebook's code cells
# Each part stops its steps within BUDGET s (default 560: a device call runs at most 600 s).
# Logs, tables and panels go to $OUT (checkpoints stay behind). On the GPU machine, carrying
# .gpu and data/minividit_gpu40 (rendered here with
# `relight-minividit data/minividit_gpu40 --train-scenes 40 --shifted-scenes 0`):
#   source .gpu/env.sh && PART=train bash experiments/2026-11-27_gpu_speed/gpu_next.sh
# DRY=1 runs the same plumbing on the CPU with a tiny network, in a few minutes, so a typo
# costs no device time:
#   DRY=1 PART=once OUT=/tmp/gpu-dry bash experiments/2026-11-27_gpu_speed/gpu_next.sh
set -u
: "${OUT:?set OUT to the folder for the logs}"
PART=${PART:?set PART to train, bench, changes or once}
DATA=${DATA:-$PWD/data/minividit_gpu40}
WORK=${WORK:-/tmp/relight-gpu}
TRAIN_TIME=${TRAIN_TIME:-00:00:05:00}
rm -rf "$WORK" && mkdir -p "$WORK" "$OUT"
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

step() {  # step NAME LIMIT_S COMMAND...: run within LIMIT_S and the part's BUDGET, log to $OUT/NAME.log
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    if [ $((BUDGET - SECONDS)) -lt "$limit" ]; then limit=$((BUDGET - SECONDS)); fi
    if [ "$limit" -lt 15 ]; then echo "$name: skipped, the part's ${BUDGET} s are spent"; return 124; fi
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
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
        bench+=(--profile gpu)
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
    # 1. trainer=gpu with model.compile=true (the experiment's default), killed with -9 after
    #    its first step checkpoint; the same command then resumes from it
    killed=("${train[@]}" run_name=killed trainer.max_epochs=4 callbacks.step_checkpoint.every_n_train_steps=20 "${tiny[@]}")
    start=$SECONDS
    "${killed[@]}" > "$OUT/killed-first.log" 2>&1 &
    pid=$!
    while kill -0 $pid 2>/dev/null && ! ls "$WORK"/logs/train/killed/*/checkpoints/step_*.ckpt > /dev/null 2>&1; do
        [ $((SECONDS - start)) -gt 200 ] && break
        sleep 1
    done
    kill -9 $pid 2>/dev/null && echo "killed -9 after $((SECONDS - start)) s: $(ls "$WORK"/logs/train/killed/*/checkpoints/)"
    wait $pid 2>/dev/null
    step killed-resumed 240 "${killed[@]}"
    grep -E "resuming from|Trained|identity" "$OUT/killed-resumed.log" | tail -5
    ckpt=$WORK/logs/train/latest/checkpoints/best.ckpt
    keep_run "$WORK/logs/train/latest" killed-resumed
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
    # 5. the demo notebook's code cells, in order, in one Python (no Jupyter there)
    RELIGHT_CKPT=$ckpt RELIGHT_PAIRS=$pairs RELIGHT_SIZE=128 MPLBACKEND=Agg step notebook 90 python3 - <<'PY'
import json
cells = json.load(open("notebooks/demo.ipynb"))["cells"]
scope: dict = {}
for cell in cells:
    if cell["cell_type"] == "code":
        exec(compile("".join(cell["source"]), "demo.ipynb", "exec"), scope)
print("notebook: every code cell ran")
PY
    tail -2 "$OUT/notebook.log"
    ;;
*)
    echo "PART must be train, bench, changes or once" >&2
    exit 2
    ;;
esac
