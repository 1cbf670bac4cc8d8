"""The VIDIT LightningDataModule (real VIDIT or the rendered mini-VIDIT: one layout)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from relight.data.augment import JointAugmentation
from relight.data.bad_items import UNREADABLE_KEY, BadItemPolicy, BadItemTracker
from relight.data.cache import CachedReader, FileReader
from relight.data.check import LAYOUT_KINDS, DataFolder, check_folders
from relight.data.datasets import FixedTripletDataset, PairsDataset, TripletDataset
from relight.data.formats import DataFormatError
from relight.data.formats import image_size as header_size
from relight.data.loader import ResumableDataLoader
from relight.data.pairs import PairFiles, index_pairs
from relight.data.sampling import EpochSampler, GuideSampler
from relight.data.transforms import check_image_size
from relight.data.transport import decode_batch
from relight.data.vidit import Scene, check_one_size, index_vidit, split_scenes

log = logging.getLogger(__name__)


class VIDITDataModule(L.LightningDataModule):
    """VIDIT track-2 training data with a random guide illumination per item.

    Args:
        root: the track-2 train folder (``ImageXXX_TTTT_D.png`` + ``ImageXXX.npy``).
        pairs_dir: a validation pairs folder (``input/``, ``guide/``, ``target/``); without
            it, validation uses a fixed, seeded set of cross-scene pairs from the
            validation scenes.
        test_pairs_dir: the test pairs folder (default: the validation set).
        gt_dir: ground truth of ``pairs_dir`` when it is not ``pairs_dir/target``.
        shifted_pairs_dir: a second validation pairs folder, from other data than training
            (mini-VIDIT's ``validation_shifted``: another scene generator): evaluated after
            training next to the validation set, never used to select checkpoints.
        image_size: side of the square training resolution (a multiple of 16), or
            ``None`` for the native size (VIDIT: 1024, the paper's setting).
        val_scenes: explicit validation scene ids (overrides ``val_ratio``).
        val_ratio, split_seed: a seeded random share of scenes for validation.
        seed: seed of the guide draws (each item: ``(seed, epoch, index)``).
        samples_per_scene: ``None``: every input image once per epoch; ``k``: k random
            inputs per scene per epoch.
        allow_same_lighting: let the guide lighting equal the input lighting.
        val_pairs_per_scene: size of the generated validation set, per validation scene.
        batch_size, num_workers, pin_memory, persistent_workers: the loaders.
        cache_dir: enable the decoded-data cache there (see :mod:`relight.data.cache`).
        allow_pickle: unpickle VIDIT's dict depth files (see :mod:`relight.data.formats`).
        compact_transport: with the cache, items travel as uint8 images and float16 depth
            and become float32 on the device (:mod:`relight.data.transport`).
        on_bad_item: ``error`` (stop at an unreadable training file) or ``skip`` (replace
            its items by other draws; see :mod:`relight.data.bad_items`).
        max_bad_items: with ``skip``, more unreadable training files than this stop the run.
        verify: decode every file of the data folders before training
            (:mod:`relight.data.check`, in ``num_workers`` processes) and report every
            problem; under ``error`` any error-level problem stops the run there.
        augment: ``hflip``, ``crop_size`` and ``scene_tint`` of the training items, applied
            to input, guide, target and both depths together; validation is never
            augmented (:class:`relight.data.augment.JointAugmentation`).

    Training batches under ``skip`` carry ``bad_items`` (unreadable files so far) and
    ``skipped_items`` (replaced draws so far), which the module logs.
    """

    def __init__(
        self,
        root: str | Path,
        pairs_dir: str | Path | None = None,
        test_pairs_dir: str | Path | None = None,
        gt_dir: str | Path | None = None,
        image_size: int | None = 256,
        val_scenes: Sequence[int] | None = None,
        val_ratio: float = 0.1,
        split_seed: int = 0,
        seed: int = 0,
        samples_per_scene: int | None = None,
        allow_same_lighting: bool = False,
        val_pairs_per_scene: int = 2,
        batch_size: int = 3,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        cache_dir: str | Path | None = None,
        allow_pickle: bool = True,
        compact_transport: bool = True,
        on_bad_item: str | BadItemPolicy = BadItemPolicy.error,
        max_bad_items: int = 100,
        verify: bool = False,
        shifted_pairs_dir: str | Path | None = None,
        augment: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.root = Path(root)
        self.pairs_dir = Path(pairs_dir) if pairs_dir else None
        self.test_pairs_dir = Path(test_pairs_dir) if test_pairs_dir else None
        self.gt_dir = Path(gt_dir) if gt_dir else None
        self.shifted_pairs_dir = Path(shifted_pairs_dir) if shifted_pairs_dir else None
        self.image_size = check_image_size(image_size)
        self.augment = JointAugmentation.from_config(augment)
        if self.augment is not None:
            self.augment.check_size(self.image_size)
        self.val_scenes = list(val_scenes) if val_scenes is not None else None
        self.val_ratio, self.split_seed, self.seed = val_ratio, split_seed, seed
        self.samples_per_scene = samples_per_scene
        self.allow_same_lighting = allow_same_lighting
        self.val_pairs_per_scene = val_pairs_per_scene
        self.batch_size, self.num_workers = batch_size, num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.allow_pickle = allow_pickle
        self.compact_transport = compact_transport
        self.on_bad_item = BadItemPolicy.parse(on_bad_item)
        self.bad_items = BadItemTracker(max_bad_items)
        self.verify = verify
        self.scenes: dict[int, Scene] = {}
        self.train_ids: list[int] = []
        self.val_ids: list[int] = []
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.shifted_val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    def prepare_data(self) -> None:
        """Check every file (``verify``) and build the decoded-data cache once (Lightning
        runs this on one process only; every rank's :meth:`setup` then opens the cache)."""
        if self.verify:
            self.verify_data()
        if self.cache_dir is not None:
            scenes = self._index()
            pairs = (
                self._pairs(self.pairs_dir, self.gt_dir),
                self._pairs(self.test_pairs_dir, None),
                self._pairs(self.shifted_pairs_dir, None),
            )
            self._reader(scenes, *pairs)

    def setup(self, stage: str | None = None) -> None:
        """Index the folders (all checks happen here, before training) and build the sets."""
        if self.train_set is not None:
            return
        self.scenes = self._index()
        self.train_ids, self.val_ids = split_scenes(
            list(self.scenes), self.val_scenes, self.val_ratio, self.split_seed
        )
        val_pairs = self._pairs(self.pairs_dir, self.gt_dir)
        test_pairs = self._pairs(self.test_pairs_dir, None)
        shifted_pairs = self._pairs(self.shifted_pairs_dir, None)
        if val_pairs is not None and self.val_ids:
            warnings.warn(
                f"data.pairs_dir is set, so the {len(self.val_ids)} held-out validation scenes "
                "are not used (set data.val_ratio=0 to train on them)",
                stacklevel=2,
            )
        scored = {"pairs_dir": val_pairs, "test_pairs_dir": test_pairs}
        scored["shifted_pairs_dir"] = shifted_pairs
        for key, pairs in scored.items():
            if pairs and self.image_size is None:  # a batch stacks pairs of one size
                sizes = {pair.name: header_size(pair.input) for pair in pairs}
                check_one_size(sizes, {pair.name: pair.input for pair in pairs}, "pair")
            if pairs and pairs[0].target is None:  # a folder has ground truth for all or none
                folder = getattr(self, key)
                elsewhere = " (or give data.gt_dir)" if key == "pairs_dir" else ""
                raise DataFormatError(
                    f"{folder}: no ground truth, {folder / 'target'} not found; the pairs of "
                    f"data.{key} are scored against theirs{elsewhere}"
                )
        if val_pairs is None and not self.val_ids:
            raise ValueError(
                "no validation data: give data.pairs_dir or hold out scenes (data.val_ratio > 0 "
                "or data.val_scenes)"
            )
        reader = self._reader(self.scenes, val_pairs, test_pairs, shifted_pairs)
        train_sampler = GuideSampler(
            self.scenes, self.train_ids, self.seed, self.samples_per_scene, self.allow_same_lighting
        )
        self.train_set = TripletDataset(
            self.scenes, train_sampler, reader, self.on_bad_item, self.augment
        )
        if val_pairs is not None:
            self.val_set = PairsDataset(val_pairs, reader)
        else:
            if self.val_pairs_per_scene < 1:
                raise ValueError(
                    f"data.val_pairs_per_scene must be >= 1, got {self.val_pairs_per_scene}"
                )
            val_sampler = GuideSampler(
                self.scenes,
                self.val_ids,
                self.seed + 1,
                self.val_pairs_per_scene,
                self.allow_same_lighting,
            )
            self.val_set = FixedTripletDataset(self.scenes, val_sampler, reader)
        self.test_set = PairsDataset(test_pairs, reader) if test_pairs is not None else self.val_set
        if shifted_pairs is not None:
            self.shifted_val_set = PairsDataset(shifted_pairs, reader)

    def evaluation_sets(self) -> dict[str, Dataset]:
        """What to evaluate after training, by output folder: ``eval`` (the validation set,
        which selects checkpoints) and ``eval_shifted`` (the shifted one, when given)."""
        if self.val_set is None:
            raise RuntimeError("call setup() before asking for the evaluation sets")
        sets = {"eval": self.val_set}
        if self.shifted_val_set is not None:
            sets["eval_shifted"] = self.shifted_val_set
        return sets

    @property
    def has_separate_test_set(self) -> bool:
        """Whether the test set is a folder of its own (``test_pairs_dir``), not the
        validation set."""
        return self.test_pairs_dir is not None

    def verify_data(self) -> None:
        """Decode every file of the train and pairs folders and report every problem: a
        :class:`DataFormatError` listing them when one must stop the run (any error under
        ``on_bad_item=error``; a layout error, which stops ``setup`` anyway, under
        ``skip``), else one warning listing them."""
        folders = [DataFolder(self.root, "train")]
        pair_folders = (
            (self.pairs_dir, self.gt_dir),
            (self.test_pairs_dir, None),
            (self.shifted_pairs_dir, None),
        )
        for pairs, gt_dir in pair_folders:
            if pairs is not None and all(f.root != pairs for f in folders):
                folders.append(DataFolder(pairs, "pairs", gt_dir))
        report = check_folders(folders, self.num_workers, self.allow_pickle)
        text = f"data.verify: {report.summary()}\n{report.listing(limit=100)}"
        skip = self.on_bad_item is BadItemPolicy.skip
        fatal = [
            p
            for p in report.problems
            if p.severity == "error" and (not skip or p.kind in LAYOUT_KINDS)
        ]
        if fatal:
            roots = " ".join(str(f.root) for f in folders)
            advice = "" if skip else ", or set data.on_bad_item=skip to skip unreadable files"
            raise DataFormatError(
                f"{text}\n`relight-data check {roots} --json FILE` writes this list. Fix or "
                f"remove these files{advice}.",
                fatal[0].path,
            )
        if report.problems:
            log.warning("%s", text)
        else:
            log.info("%s", text)

    def _index(self) -> dict[int, Scene]:
        return index_vidit(
            self.root,
            allow_pickle=self.allow_pickle,
            tolerate_unreadable=self.on_bad_item is BadItemPolicy.skip,
            one_size=self.image_size is None,
        )

    def _pairs(self, folder: Path | None, gt_dir: Path | None) -> list[PairFiles] | None:
        if folder is None:
            return None
        return index_pairs(folder, gt_dir, allow_pickle=self.allow_pickle)

    def _reader(
        self, scenes: dict[int, Scene], *pair_sets: list[PairFiles] | None
    ) -> FileReader | CachedReader:
        """A file reader, or the cache of every file (built here when it is missing)."""
        if self.cache_dir is None:
            return FileReader(self.image_size, self.allow_pickle)
        images = [p for scene in scenes.values() for p in scene.images.values()]
        depths = [scene.depth for scene in scenes.values()]
        for pairs in pair_sets:
            for pair in pairs or []:
                images += [pair.input, pair.guide] + ([pair.target] if pair.target else [])
                depths += [pair.input_depth, pair.guide_depth]
        return CachedReader.build(
            self.cache_dir,
            images,
            depths,
            self.image_size,
            self.allow_pickle,
            compact=self.compact_transport,
            tolerate_unreadable=self.on_bad_item is BadItemPolicy.skip,
        )

    def _loader(
        self, dataset: Dataset | None, shuffle: bool, seed: int, loader: type = DataLoader, **extra
    ) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() before asking for a data loader")
        return loader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochSampler(len(dataset), shuffle=shuffle, seed=seed),
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            drop_last=False,
            **extra,
        )

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """Compact batches (uint8 images, float16 depth) become float32 on the device;
        under ``on_bad_item=skip`` the unreadable files of a training batch are counted
        (each reported once), and past ``max_bad_items`` the run stops."""
        if UNREADABLE_KEY in batch:
            batch = dict(batch)
            self.bad_items.update(batch.pop(UNREADABLE_KEY))
            exceeded = self.bad_items.exceeded
            trainer = getattr(self, "trainer", None)
            if trainer is not None and trainer.world_size > 1:  # every rank stops together
                exceeded = trainer.strategy.reduce_boolean_decision(exceeded, all=False)
            if exceeded:
                raise self.bad_items.error()
            batch["bad_items"] = len(self.bad_items.files)
            batch["skipped_items"] = self.bad_items.skipped
        return decode_batch(batch)

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: the unreadable files met so far (``skip``)."""
        if self.on_bad_item is BadItemPolicy.skip:
            return {"bad_items": self.bad_items.state_dict()}
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "bad_items" in state:
            self.bad_items.load_state_dict(state["bad_items"])

    def train_dataloader(self) -> DataLoader:
        """The training loader; its position inside an epoch is saved in checkpoints."""
        return self._loader(
            self.train_set,
            shuffle=True,
            seed=self.seed,
            loader=ResumableDataLoader,
            batches_done=self._train_batches_done,
            set_batches_done=self._set_train_batches_done,
        )

    def _train_batches_done(self) -> int:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0
        return trainer.fit_loop.epoch_loop.batch_progress.current.processed

    def _set_train_batches_done(self, done: int) -> None:
        """Move the restored count of the epoch's batches (a resume that converted the
        position or restarted the epoch), keeping its counters' offsets to each other."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return
        current = trainer.fit_loop.epoch_loop.batch_progress.current
        shift = done - current.processed
        for counter in ("ready", "started", "processed", "completed"):
            setattr(current, counter, getattr(current, counter) + shift)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False, seed=self.seed)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False, seed=self.seed)


class MiniVIDITDataModule(VIDITDataModule):
    """The rendered mini-VIDIT: like :class:`VIDITDataModule` on ``dataset_dir/train`` with
    the ``dataset_dir/validation`` pairs (and ``dataset_dir/validation_shifted`` as the
    shifted validation set), rendering the dataset first when it is missing.

    The render arguments are those of :class:`relight.data.synthetic.RenderSettings`
    (``val_scenes_rendered`` is its ``val_scenes``, ``shifted_scenes_rendered`` its
    ``shifted_scenes``; 0: no shifted validation set). Rendering happens in
    :meth:`prepare_data`, which Lightning runs once (on rank 0).
    """

    def __init__(
        self,
        dataset_dir: str | Path,
        render_size: int = 128,
        train_scenes: int = 96,
        val_scenes_rendered: int = 8,
        pairs_per_val_scene: int = 4,
        shifted_scenes_rendered: int = 10,
        pairs_per_shifted_scene: int = 4,
        spp: int = 16,
        render_seed: int = 0,
        render_workers: int = 2,
        root: str | Path | None = None,
        val_ratio: float = 0.0,
        **kwargs,
    ) -> None:
        self.dataset_dir = Path(dataset_dir)
        if kwargs.get("pairs_dir") is None:
            kwargs["pairs_dir"] = self.dataset_dir / "validation"
        if kwargs.get("shifted_pairs_dir") is None and shifted_scenes_rendered:
            kwargs["shifted_pairs_dir"] = self.dataset_dir / "validation_shifted"
        super().__init__(root or self.dataset_dir / "train", val_ratio=val_ratio, **kwargs)
        from relight.data.synthetic import RenderSettings

        self.render_settings = RenderSettings(
            size=render_size,
            train_scenes=train_scenes,
            val_scenes=val_scenes_rendered,
            pairs_per_val_scene=pairs_per_val_scene,
            shifted_scenes=shifted_scenes_rendered,
            pairs_per_shifted_scene=pairs_per_shifted_scene,
            spp=spp,
            seed=render_seed,
            workers=render_workers,
        )

    def prepare_data(self) -> None:
        """Render the mini-VIDIT unless a complete one with these settings is there."""
        from relight.data.synthetic import is_rendered, render_minividit

        if not is_rendered(self.dataset_dir, self.render_settings):
            render_minividit(self.dataset_dir, self.render_settings)
        super().prepare_data()

    def setup(self, stage: str | None = None) -> None:
        from relight.data.synthetic import is_rendered

        if not is_rendered(self.dataset_dir, self.render_settings):
            self.prepare_data()  # direct use outside a Trainer
        super().setup(stage)
