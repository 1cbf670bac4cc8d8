#!/usr/bin/env bash
# time to train 4 steps + 2 validations with model.compile=true: eval eager vs compiled
# on the mini-VIDIT that `make train` renders into data/minividit; ResNet-18, 64², cold compile
cd "$(dirname "$0")/../.."
mkdir -p "${OUT:-/tmp/compile-eval}"
for ce in false true; do
  start=$(date +%s.%N)
  TORCHINDUCTOR_FORCE_DISABLE_CACHES=1 .venv/bin/relight-train data=minividit  \
    data.image_size=64 data.batch_size=4 data.num_workers=0 \
    data.pin_memory=false model.net.encoder=resnet18 model.net.encoder_weights=none model.metrics.lpips_weights=none \
    loss.perceptual=0.0 trainer=cpu trainer.max_epochs=2 +trainer.limit_train_batches=2 +trainer.limit_val_batches=2 \
    +trainer.enable_progress_bar=false evaluate=false test=false model.compile=true model.compile_eval=$ce \
    paths.log_dir=${OUT:-/tmp/compile-eval}/logs run_name=ce_$ce extras.print_config=false > ${OUT:-/tmp/compile-eval}/$ce.log 2>&1
  echo "compile_eval=$ce rc=$? $(echo "$(date +%s.%N) - $start" | bc) s"
done
