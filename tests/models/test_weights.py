import time

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file

from relight.losses.perceptual import PerceptualLoss
from relight.models import S3Net, WeightsUnavailableError, create_timm_model
from relight.models.weight_files import CheckpointError


def test_imagenet_weights_offline_fail_fast_with_three_ways():
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as info:
        S3Net()  # default: imagenet
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "timm/res2net101d" in message and "HF_HUB_OFFLINE=1" in message
    for way in ("1. ", "2. ", "3. "):
        assert way in message


def test_unreachable_hub_fails_within_seconds(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.relight-test.invalid")
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError, match="unreachable"):
        create_timm_model("resnet18", "imagenet")
    assert time.monotonic() - start < 10


def test_allow_random_init_warns_loudly():
    with pytest.warns(UserWarning, match="RANDOM INIT"):
        model = create_timm_model("resnet18", "imagenet", allow_random_init=True)
    assert isinstance(model, torch.nn.Module)


def test_missing_local_file_names_it(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        S3Net(encoder="resnet18", encoder_weights=str(missing))


def _reference_resnet18(tmp_path):
    torch.manual_seed(1)
    reference = timm.create_model("resnet18").state_dict()
    path = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in reference.items()}, str(path))
    return reference, path


def test_local_file_weights_land_in_the_encoder(tmp_path):
    reference, path = _reference_resnet18(tmp_path)
    model = S3Net(encoder="resnet18", encoder_weights=str(path))
    encoder = model.encoder.state_dict()
    torch.testing.assert_close(encoder["layer3.1.conv2.weight"], reference["layer3.1.conv2.weight"])
    torch.testing.assert_close(encoder["bn1.running_var"], reference["bn1.running_var"])
    # the 8-channel stem conv is fresh, as in the authors' model
    assert encoder["conv1.weight"].shape == (64, 8, 7, 7)
    assert not torch.allclose(encoder["conv1.weight"][:, :3], reference["conv1.weight"])


def test_a_local_file_of_another_model_or_a_broken_one_names_the_file(tmp_path):
    """timm loads a feature extractor's weights without checking their names: a file of
    another model left the encoder at its random init, with only a log line."""
    other = tmp_path / "other.pth"
    torch.save({"foo.weight": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match=r"other\.pth: not weights of the S3Net encoder"):
        S3Net(encoder="resnet18", encoder_weights=str(other))
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    for network in ("encoder", "vgg"):
        with pytest.raises(CheckpointError, match=r"empty\.pth.*empty \(0 bytes\)"):
            if network == "encoder":
                S3Net(encoder="resnet18", encoder_weights=str(empty))
            else:
                PerceptualLoss(weights=str(empty))
    _, resnet18 = _reference_resnet18(tmp_path)
    with pytest.raises(CheckpointError, match="not weights of the perceptual VGG19"):
        PerceptualLoss(weights=str(resnet18))
    # torchvision's VGG19 file: timm renames and reshapes its classifier on loading
    torch.manual_seed(2)
    vgg = torchvision.models.vgg19().state_dict()
    torch.save(vgg, tmp_path / "vgg19-torchvision.pth")
    loss = PerceptualLoss(weights=str(tmp_path / "vgg19-torchvision.pth"))
    torch.testing.assert_close(loss.features[0].weight, vgg["features.0.weight"])


def test_adapt_stem_keeps_timm_adaptation(tmp_path):
    reference, path = _reference_resnet18(tmp_path)
    model = S3Net(encoder="resnet18", encoder_weights=str(path), adapt_stem=True)
    stem = model.encoder.state_dict()["conv1.weight"]
    # timm repeats the RGB filters over the 8 channels and rescales by 3/8
    torch.testing.assert_close(stem[:, :3], reference["conv1.weight"] * 3 / 8)


def test_imagenet_weights_come_from_the_hf_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants as hf_constants

    reference, _ = _reference_resnet18(tmp_path)
    repo_id = timm.models.get_pretrained_cfg("resnet18").hf_hub_id
    repo = tmp_path / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    save_file(
        {k: v.contiguous() for k, v in reference.items()}, str(snapshot / "model.safetensors")
    )
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))

    model = create_timm_model("resnet18", "imagenet")
    torch.testing.assert_close(model.state_dict()["fc.weight"], reference["fc.weight"])


def test_download_timeout_is_the_request_s_own(monkeypatch, tmp_path):
    """The timeout goes to this request only: the process-wide socket default (which every
    other thread sees) is never changed; a partial download leaves no file."""
    import io
    import socket
    import urllib.request

    from relight.models import weights

    seen = {}

    def fake_urlopen(url, timeout=None):
        seen["timeout"], seen["default"] = timeout, socket.getdefaulttimeout()
        return io.BytesIO(b"weights")

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    target = tmp_path / "hub" / "w.pth"
    weights.download("http://example.invalid/w.pth", target)
    assert target.read_bytes() == b"weights"
    assert seen == {"timeout": weights.DOWNLOAD_TIMEOUT_S, "default": None}

    def broken(url, timeout=None):
        raise TimeoutError("timed out")

    monkeypatch.setattr(urllib.request, "urlopen", broken)
    with pytest.raises(TimeoutError):
        weights.download("http://example.invalid/x.pth", tmp_path / "hub" / "x.pth")
    assert sorted(p.name for p in (tmp_path / "hub").iterdir()) == ["w.pth"]


def test_only_network_errors_count_as_a_failed_download(monkeypatch):
    """A download that fails is reported with the three ways; a load that fails for another
    reason (a shape mismatch) is that error, not 'could not be downloaded'."""
    from relight.models import weights

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(weights, "cached_hub_file", lambda repo: None)
    monkeypatch.setattr(weights, "hub_unavailable_reason", lambda probe=True: None)

    def create(name, pretrained=False, **kwargs):
        if pretrained:
            raise failure
        return torch.nn.Identity()

    monkeypatch.setattr(timm, "create_model", create)
    failure = ConnectionError("connection reset")
    with pytest.raises(WeightsUnavailableError, match=r"could not be downloaded \(ConnectionError"):
        weights.create_timm_model("resnet18", "imagenet")
    failure = RuntimeError("size mismatch for conv1.weight")
    with pytest.raises(RuntimeError, match="size mismatch"):
        weights.create_timm_model("resnet18", "imagenet")
