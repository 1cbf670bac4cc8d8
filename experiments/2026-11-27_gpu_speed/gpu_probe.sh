#!/usr/bin/env bash
# First GPU call: profiles of the paper step and the mini-VIDIT step, the probe of candidate
# speed-ups, and the current training loop's items/s at 128². Logs and JSON go to $OUT.
#   source .gpu/env.sh && bash experiments/2026-11-27_gpu_speed/gpu_probe.sh
set -u
here=experiments/2026-11-27_gpu_speed
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$OUT/smi.txt"
python3 -m relight.cli.bench profile --device cuda --size 1024 --batch 3 --precision bf16-mixed \
    --channels-last --output "$OUT/profile-paper.json" --table "$OUT/profile-paper.md" > "$OUT/profile.log" 2>&1
python3 -m relight.cli.bench profile --device cuda --size 128 --batch 32 --precision bf16-mixed \
    --output "$OUT/profile-mini.json" --table "$OUT/profile-mini.md" >> "$OUT/profile.log" 2>&1
tail -3 "$OUT/profile.log"
timeout 150 python3 "$here/probe_step.py" > "$OUT/probe.jsonl" 2> "$OUT/probe.err"
cat "$OUT/probe.jsonl"; tail -3 "$OUT/probe.err"
start=$(date +%s)
python3 -m relight.cli.minividit data/minividit --workers 16 > "$OUT/render.log" 2>&1
echo "render: $(( $(date +%s) - start )) s"; tail -2 "$OUT/render.log"
start=$(date +%s)
timeout 80 python3 -m relight.train experiment=minividit_cpu trainer=gpu model.net.encoder=res2net101d \
    model.net.global_residual=false model.net.global_colour=false data.batch_size=32 \
    data.num_workers=8 data.pin_memory=true data.persistent_workers=true trainer.max_epochs=3 \
    trainer.max_time=null model.panel_every_n_epochs=0 > "$OUT/train.log" 2>&1
echo "train rc=$? $(( $(date +%s) - start )) s"
grep -o "Epoch [0-9]*: 100%[^]]*]" "$OUT/train.log" | tail -4
tail -c 1500 "$OUT/train.log"
