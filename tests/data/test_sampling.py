import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from relight.data import EpochSampler, GuideSampler, TripletDataset, index_vidit
from relight.data.cache import FileReader
from relight.data.loader import ResumableDataLoader

from .vidit_factory import write_vidit

LIGHTS = [(2500, "N"), (3500, "E"), (6500, "SW")]


@pytest.fixture
def scenes(tmp_path):
    return index_vidit(write_vidit(tmp_path, scenes=(0, 1, 2, 3), lightings=LIGHTS, size=16))


def test_rule_guide_from_another_scene_target_is_input_under_guide_light(scenes):
    sampler = GuideSampler(scenes, [0, 1, 2, 3], seed=0)
    assert len(sampler) == 12  # every input image once
    for epoch in range(3):
        for i in range(len(sampler)):
            t = sampler.triplet(epoch, i)
            assert t.guide_scene != t.input_scene
            assert t.guide_light != t.input_light
            assert t.guide_light in scenes[t.input_scene].images


def test_dataset_item_matches_the_triplet(scenes, tmp_path):
    dataset = TripletDataset(scenes, GuideSampler(scenes, [0, 1, 2, 3]), FileReader(None))
    item = dataset[5]
    t = dataset.triplet(5)
    reader = FileReader(None)
    target_path = scenes[t.input_scene].images[t.guide_light]
    assert torch.equal(item["target"], reader.image(target_path))
    assert torch.equal(item["guide"], reader.image(scenes[t.guide_scene].images[t.guide_light]))
    assert torch.equal(item["input"], reader.image(scenes[t.input_scene].images[t.input_light]))
    assert item["name"] == t.name

    def stored_depth(scene: int) -> torch.Tensor:
        depth = np.load(tmp_path / f"Image{scene:03d}.npy", allow_pickle=True).item()
        return torch.from_numpy(depth["normalized_depth"])[None]

    assert t.input_scene != t.guide_scene
    assert torch.equal(item["input_depth"], stored_depth(t.input_scene))
    assert torch.equal(item["guide_depth"], stored_depth(t.guide_scene))


def test_same_lighting_only_when_allowed(scenes):
    allowed = GuideSampler(scenes, [0, 1, 2, 3], allow_same_lighting=True)
    same = sum(
        allowed.triplet(e, i).guide_light == allowed.triplet(e, i).input_light
        for e in range(10)
        for i in range(len(allowed))
    )
    assert same > 0


def test_reproducible_and_new_guide_each_epoch(scenes):
    a, b = GuideSampler(scenes, [0, 1, 2, 3], seed=5), GuideSampler(scenes, [0, 1, 2, 3], seed=5)
    assert [a.triplet(1, i) for i in range(12)] == [b.triplet(1, i) for i in range(12)]
    epoch0 = [a.triplet(0, i) for i in range(12)]
    epoch1 = [a.triplet(1, i) for i in range(12)]
    assert sum(x != y for x, y in zip(epoch0, epoch1, strict=True)) >= 4
    other_seed = GuideSampler(scenes, [0, 1, 2, 3], seed=6)
    assert [other_seed.triplet(0, i) for i in range(12)] != epoch0


def test_samples_per_scene_sets_the_epoch_length(scenes):
    sampler = GuideSampler(scenes, [0, 1, 2], samples_per_scene=5)
    assert len(sampler) == 15
    assert [sampler.triplet(0, i).input_scene for i in range(15)] == [0] * 5 + [1] * 5 + [2] * 5


def test_single_lighting_scene_skipped_and_too_few_scenes(tmp_path):
    write_vidit(tmp_path, scenes=(0, 1), lightings=LIGHTS, size=16)
    write_vidit(tmp_path, scenes=(2,), lightings=[(2500, "N")], size=16)
    scenes = index_vidit(tmp_path)
    with pytest.warns(UserWarning, match="Image002 has a single lighting"):
        sampler = GuideSampler(scenes, [0, 1, 2])
    assert sampler.scene_ids == [0, 1]
    with pytest.raises(ValueError, match="at least 2 usable scenes"):
        GuideSampler(scenes, [0])


def names_in_epochs(dataset, workers: int, epochs: int = 2) -> list[list[str]]:
    sampler = EpochSampler(len(dataset), shuffle=True, seed=3)
    loader = DataLoader(dataset, batch_size=4, sampler=sampler, num_workers=workers)
    out = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        out.append([name for batch in loader for name in batch["name"]])
    return out


def test_identical_across_worker_counts(scenes):
    dataset = TripletDataset(scenes, GuideSampler(scenes, [0, 1, 2, 3], seed=9), FileReader(None))
    single = names_in_epochs(dataset, workers=0)
    multi = names_in_epochs(dataset, workers=2)
    assert single == multi
    assert single[0] != single[1]
    assert len(set(single[0])) == 12


def test_epoch_sampler_shards_ranks_disjointly():
    length = 10
    shards = [list(EpochSampler(length, seed=1, rank=r, world_size=3)) for r in range(3)]
    assert all(len(s) == 4 for s in shards)
    flat = [k for s in shards for k in s]
    assert set(flat) == set(range(length))  # padded with repeats to equal shard sizes
    sampler = EpochSampler(length, seed=1, rank=0, world_size=1)
    sampler.set_epoch(2)
    keys = list(sampler)
    assert sorted(k - 2 * length for k in keys) == list(range(length))
    assert list(EpochSampler(length, shuffle=False)) == list(range(length))
    # more ranks than items: every rank still gets its item (padding cycles)
    tiny = [list(EpochSampler(3, shuffle=False, rank=r, world_size=8)) for r in range(8)]
    assert [len(s) for s in tiny] == [1] * 8 and {k for s in tiny for k in s} == {0, 1, 2}


def _shard_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import json

    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world
    )
    sampler = EpochSampler(10, shuffle=True, seed=4)
    sampler.set_epoch(1)
    with open(f"{out_dir}/rank{rank}.json", "w") as handle:
        json.dump(list(sampler), handle)
    torch.distributed.destroy_process_group()


def test_epoch_sampler_shards_under_a_real_process_group(tmp_path):
    import json

    import torch.multiprocessing as mp

    mp.spawn(_shard_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    shards = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 5
    assert sorted(shards[0] + shards[1]) == list(range(10, 20))  # epoch 1 keys, each once
    expected = []
    for rank in range(2):
        sampler = EpochSampler(10, seed=4, rank=rank, world_size=2)
        sampler.set_epoch(1)
        expected.append(list(sampler))
    assert shards == expected  # the process group's rank decides the shard


def resumable(world: int, batch_size: int, rank: int = 0, done: int = 0, moved=None):
    sampler = EpochSampler(96, seed=0, rank=rank, world_size=world)
    return ResumableDataLoader(
        list(range(96)),
        batch_size=batch_size,
        sampler=sampler,
        batches_done=lambda: done,
        set_batches_done=moved.append if moved is not None else None,
    )


@pytest.mark.parametrize(
    ("before", "after"),
    [((1, 4), (2, 4)), ((2, 4), (1, 4)), ((4, 2), (2, 4)), ((2, 3), (3, 2)), ((1, 4), (1, 8))],
    ids=["1->2 ranks", "2->1 ranks", "4x2->2x4", "2x3->3x2", "batch 4->8"],
)
def test_resume_on_another_world_size_trains_each_item_once(before, after):
    """Stopped after 4 batches per rank, resumed on (ranks, batch size) ``after``: every item
    of the epoch is trained on once, and the training loop's batch count is converted."""
    (world, batch_size), (new_world, new_batch_size) = before, after
    trained = [
        int(key)
        for rank in range(world)
        for batch in list(resumable(world, batch_size, rank))[:4]
        for key in batch
    ]
    state = resumable(world, batch_size, done=4).state_dict()
    assert state["world_size"] == world and state["batch_size"] == batch_size
    rest, moved = [], []
    for rank in range(new_world):
        loader = resumable(new_world, new_batch_size, rank, moved=moved)
        loader.load_state_dict(state)
        batches = list(loader)
        rest += [int(key) for batch in batches for key in batch]
        assert len(batches) == len(loader) - moved[-1]  # the loop ends the epoch with the data
    assert sorted(trained + rest) == list(range(96))
    assert moved == [4 * world * batch_size // (new_world * new_batch_size)] * new_world


def test_resume_at_a_position_the_new_world_size_cannot_reach_restarts_the_epoch():
    state = resumable(1, 4, done=3).state_dict()  # 12 items: not a whole batch of 2 x 8
    moved = []
    loader = resumable(2, 8, moved=moved)
    with pytest.warns(
        UserWarning,
        match=r"12 items .*1 rank\(s\) x batches of 4, now 2 x 8.*"
        r"starts from its first item",
    ):
        loader.load_state_dict(state)
    assert len([key for batch in loader for key in batch]) == 48 and moved == [0]


def test_checkpoint_without_world_size_resumes_as_before():
    state = resumable(2, 4, done=5).state_dict()
    del state["world_size"]  # written before world sizes were saved
    loader = resumable(2, 4, rank=1)
    loader.load_state_dict(state)
    assert [int(k) for b in loader for k in b] == [
        int(k) for b in list(resumable(2, 4, rank=1))[5:] for k in b
    ]
