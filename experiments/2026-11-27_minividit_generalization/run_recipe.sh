#!/bin/bash
# One run of the CPU main job with overrides, then one line of results in logs/recipes.tsv:
# name, wall seconds, load average before -> after, exit code, the validation and
# shifted-validation PSNR/SSIM next to the identity's, the gains, the overrides.
#   experiments/2026-11-27_minividit_generalization/run_recipe.sh NAME [overrides...]
# THREADS: torch CPU threads (default 2, the machine's cores); on a machine busy with other
# jobs 1 is faster per step (spin-waiting threads).
cd "$(git rev-parse --show-toplevel)" || exit 1
PY=${PY:-.venv/bin/python}
name=$1; shift
mkdir -p logs
up0=$(uptime | sed 's/.*load average: //')
start=$(date +%s)
OMP_NUM_THREADS=${THREADS:-2} HF_HUB_OFFLINE=1 WANDB_MODE=disabled $PY -m relight.train \
    experiment=minividit_cpu run_name="$name" "$@" > "logs/recipe_$name.txt" 2>&1
rc=$?
end=$(date +%s)
up1=$(uptime | sed 's/.*load average: //')
run=$(ls -td "logs/train/$name"/*/ | head -1)
$PY - "$name" "$run" "$((end - start))" "$up0" "$up1" "$rc" "$*" <<'PY' >> logs/recipes.tsv
import json, sys
name, run, secs, up0, up1, rc, args = sys.argv[1:]
cells = [name, secs, f"load {up0} -> {up1}", f"rc={rc}"]
for folder in ("eval", "eval_shifted"):
    try:
        with open(f"{run}/{folder}/metrics.json") as handle:
            s = json.load(handle)
    except OSError:
        cells.append(f"{folder}: missing")
        continue
    m, i = s["results"]["S3Net"], s["results"]["identity (output = input)"]
    cells.append(f"{folder}: {m['psnr']:.2f}/{m['ssim']:.4f} (id {i['psnr']:.2f}/{i['ssim']:.4f}; "
                 f"+{m['psnr'] - i['psnr']:.2f} dB, {m['ssim'] - i['ssim']:+.4f})")
cells.append(args)
print("\t".join(cells))
PY
