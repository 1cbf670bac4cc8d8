import pytest
import torch

from relight.cli.convert import main as convert_main
from relight.models import CheckpointConversionError, S3Net, convert_authors_checkpoint
from relight.models.weight_files import CheckpointError

from .authors_state import authors_key_list, synthetic_authors_state_dict


@pytest.fixture(scope="module")
def authors_state_dict() -> dict[str, torch.Tensor]:
    return synthetic_authors_state_dict()


def test_key_list_is_the_released_model():
    keys = authors_key_list()
    assert len(keys) == 990
    numel = sum(torch.Size(shape).numel() for _, shape, dtype in keys if dtype == "float32")
    buffers = sum(torch.Size(shape).numel() for key, shape, _ in keys if "running_" in key)
    assert numel - buffers == 49_353_370  # the JSON's parameter count


def test_conversion_loads_strictly_and_lands_every_tensor(s3net, authors_state_dict):
    converted = convert_authors_checkpoint(authors_state_dict, s3net.state_dict())
    model = S3Net(encoder_weights="none")
    model.load_state_dict(converted, strict=True)
    ours = model.state_dict()
    pairs = {
        "encoder.conv1.0.weight": "encoder.conv1.0.weight",
        "encoder.layer3.22.bns.2.running_var": "encoder.layer3.22.bns.2.running_var",
        "mid_conv.conv2.weight": "attention16.conv2.weight",
        "mid_conv.calayer.ca.0.weight": "attention16.channel_attention.reduce.weight",
        "attention1.calayer.ca.2.bias": "attention8.channel_attention.expand.bias",
        "attention2.palayer.pa.2.weight": "attention4.pixel_attention.expand.weight",
        "enhancer.conv1010.weight": "enhancement.pool_convs.0.weight",
        "enhancer.conv1030.bias": "enhancement.pool_convs.2.bias",
        "enhancer.refine3.weight": "enhancement.fuse.weight",
        "tail.1.weight": "tail.weight",
    }
    for theirs, mine in pairs.items():
        assert torch.equal(ours[mine], authors_state_dict[theirs]), (theirs, mine)
    assert "enhancer.batch1.weight" in authors_state_dict
    assert not any("batch1" in key for key in converted)


def test_data_parallel_prefix_and_file_round_trip(tmp_path, s3net, authors_state_dict):
    path = tmp_path / "weight.pkl"
    torch.save({"state_dict": {f"module.{k}": v for k, v in authors_state_dict.items()}}, path)
    converted = convert_authors_checkpoint(path, s3net.state_dict())
    assert torch.equal(converted["tail.bias"], authors_state_dict["tail.1.bias"])

    output = tmp_path / "out" / "s3net.pt"
    convert_main([str(path), str(output)])
    saved = torch.load(output, weights_only=True)["state_dict"]
    assert torch.equal(saved["tail.bias"], authors_state_dict["tail.1.bias"])


def test_leftover_key_is_refused(s3net, authors_state_dict):
    broken = dict(authors_state_dict, **{"extra.head.weight": torch.zeros(1)})
    with pytest.raises(CheckpointConversionError, match="unexpected keys: extra.head.weight"):
        convert_authors_checkpoint(broken, s3net.state_dict())


def test_missing_key_is_refused(s3net, authors_state_dict):
    broken = {k: v for k, v in authors_state_dict.items() if k != "attention2.conv1.bias"}
    with pytest.raises(CheckpointConversionError, match="missing keys: attention4.conv1.bias"):
        convert_authors_checkpoint(broken, s3net.state_dict())


def test_wrong_shape_is_refused(s3net, authors_state_dict):
    broken = dict(authors_state_dict, **{"tail.1.weight": torch.zeros(3, 28, 5, 5)})
    with pytest.raises(CheckpointConversionError, match=r"tail.1.weight -> tail.weight"):
        convert_authors_checkpoint(broken, s3net.state_dict())


def test_missing_file_and_non_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="authors' checkpoint not found: .*weight.pkl"):
        convert_authors_checkpoint(tmp_path / "weight.pkl")
    bad = tmp_path / "bad.pkl"
    torch.save({"state_dict": {"a": 1}}, bad)
    with pytest.raises(CheckpointError, match=r"bad\.pkl: no state dict inside"):
        convert_authors_checkpoint(bad)
