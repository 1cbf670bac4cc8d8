"""Items/s of `make train-gpu`'s training loader (experiment=minividit_gpu: 128², batch 32,
16 random inputs per scene) on the carried 40-scene mini-VIDIT, without a GPU: is the
data path below the GPU target of 500 items/s? Two epochs, after each epoch's first batch.

    python experiments/2026-11-28_minividit_gpu_loader/loader_rate.py WORKERS
"""

import sys
import time

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from relight.config import register_configs
from relight.paths import config_dir

register_configs()
workers = int(sys.argv[1])
overrides = [
    "experiment=minividit_gpu",
    "data.dataset_dir=data/minividit_gpu40",
    "data.train_scenes=40",
    "data.shifted_scenes_rendered=0",
    f"data.num_workers={workers}",
    f"data.persistent_workers={'true' if workers else 'false'}",
    "data.pin_memory=false",
]
with initialize_config_dir(str(config_dir()), version_base="1.3"):
    cfg = compose("train", overrides=overrides)
dm = instantiate(cfg.data)
dm.setup("fit")
for epoch in range(2):
    loader = iter(dm.train_dataloader())
    first = next(loader)["input"].shape[0]
    items, start = 0, time.perf_counter()
    for batch in loader:
        items += batch["input"].shape[0]
    rate = items / (time.perf_counter() - start)
    print(f"workers={workers} epoch {epoch}: {items + first} items, {rate:.0f} items/s")
