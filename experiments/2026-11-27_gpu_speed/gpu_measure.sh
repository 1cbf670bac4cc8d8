#!/usr/bin/env bash
# Second GPU call: the GPU main job's training loop end to end (a 40-scene mini-VIDIT
# rendered on the CPU machine and carried, ~100 s of fit), then `make bench-gpu`'s rows that
# matter for the targets. Logs and JSON go to $OUT.
#   source .gpu/env.sh && bash experiments/2026-11-27_gpu_speed/gpu_measure.sh
set -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/smi.txt"
start=$(date +%s)
timeout 140 python3 -m relight.train experiment=minividit_gpu data.dataset_dir="$PWD/data/minividit_gpu40" \
    data.train_scenes=40 data.shifted_scenes_rendered=0 trainer.max_time=00:00:01:40 \
    hydra.run.dir="$OUT/run" > "$OUT/train.log" 2>&1
echo "train rc=$? $(( $(date +%s) - start )) s"
grep -E "Trained|items/s|S3Net|identity|Error|error" "$OUT/train.log" | tail -12
cp "$OUT"/run/csv/metrics.csv "$OUT/train_metrics.csv" 2>/dev/null
rm -rf "$OUT/run"
timeout 255 python3 -m relight.cli.bench suite --profile gpu --modes eager-fp32 bf16-cl \
    --train-modes 32-true bf16-mixed bf16-mixed-compile bf16-mixed-graphs --no-accuracy \
    --output "$OUT/gpu.json" --table "$OUT/gpu.md" > "$OUT/bench.log" 2>&1
echo "bench rc=$?"
grep -v "^{" "$OUT/bench.log" | grep -iE "error|Traceback" | tail -3
cut -c1-400 "$OUT/bench.log" | grep "^{" | tail -12
