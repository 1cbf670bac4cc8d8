"""The GPU speed switches, checked on a CPU: TF32 policy, compile modes, the throughput
callback, fused AdamW, and the GPU main job's config."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from relight.config import ConfigError, validate_config
from relight.throughput import TrainingThroughput
from relight.train import set_float32_precision, train

from .conftest import compose_cfg


@pytest.fixture
def restore_float32_precision():
    before = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    yield
    torch.set_float32_matmul_precision(before[0])
    torch.backends.cudnn.allow_tf32 = before[1]


@pytest.mark.parametrize(
    ("trainer", "expected"),
    [
        ({"accelerator": "gpu"}, "high"),
        ({"accelerator": "cuda", "deterministic": False}, "high"),
        ({"accelerator": "gpu", "deterministic": True}, "highest"),  # no TF32 convs either
        ({"accelerator": "cpu"}, None),  # a CPU run's numbers never change
    ],
)
def test_auto_float32_precision_is_tf32_on_a_gpu_unless_deterministic(
    trainer, expected, restore_float32_precision
):
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.allow_tf32 = True  # torch's default: cuDNN convolutions in TF32
    assert set_float32_precision("auto", OmegaConf.create(trainer)) == expected
    assert torch.get_float32_matmul_precision() == (expected or "highest")
    # a CPU run is left alone; on a GPU, cuDNN follows the matmul policy
    assert torch.backends.cudnn.allow_tf32 is (expected != "highest")


def test_explicit_float32_precision_is_applied(restore_float32_precision):
    assert set_float32_precision("highest", OmegaConf.create({})) == "highest"
    assert not torch.backends.cudnn.allow_tf32
    assert set_float32_precision(None, OmegaConf.create({})) is None
    with pytest.raises(ValueError, match="choose one of"):
        set_float32_precision("tf32", OmegaConf.create({}))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.compile_mode=fast", "model.compile_mode='fast': choose one of"),
        ("float32_matmul_precision=hi", "float32_matmul_precision='hi': choose one of"),
    ],
)
def test_speed_switch_typos_are_config_errors(tmp_path, override, message):
    cfg = compose_cfg("train", [override], tmp_path)
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg)


def test_cudnn_autotuner_is_a_trainer_switch_that_excludes_deterministic(tmp_path, monkeypatch):
    from hydra.utils import instantiate

    both = compose_cfg("train", ["trainer.benchmark=true", "trainer.deterministic=true"], tmp_path)
    with pytest.raises(ConfigError, match="trainer.benchmark=true with trainer.deterministic=True"):
        validate_config(both)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)  # restored afterwards
    for value in (True, False):
        cfg = compose_cfg("train", [f"trainer.benchmark={value}"], tmp_path)
        validate_config(cfg)
        instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
        assert torch.backends.cudnn.benchmark is value  # Lightning applies trainer.benchmark


@pytest.mark.parametrize(
    ("switches", "marks"),
    [
        (["model.compile=true"], 1),
        (["model.compile_loss=true"], 1),  # the loss's own CUDA graphs need the mark too
        (["model.compile=true", "model.compile_mode=default"], 0),
        ([], 0),
    ],
)
def test_training_step_starts_a_cuda_graph_iteration_when_anything_records_graphs(
    tmp_path, monkeypatch, switches, marks
):
    from hydra.utils import instantiate

    from .conftest import TINY

    cfg = compose_cfg("train", [*TINY, "model.compile_mode=reduce-overhead", *switches], tmp_path)
    module = instantiate(cfg.model)
    steps = []
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: steps.append(1))
    module._mark_graph_step()
    assert len(steps) == marks


@pytest.mark.parametrize("compile_eval", [False, True])
def test_evaluation_runs_a_compiled_network_eagerly_unless_compile_eval(
    tmp_path, monkeypatch, compile_eval
):
    """Validation and test with model.compile: the network's own forward, so the run does
    not compile (and record CUDA graphs of) a second, eval-mode graph."""
    from hydra.utils import instantiate

    from .conftest import TINY

    graphs = []  # the graphs dynamo compiles (an eager backend: no Inductor, fast)

    def backend(graph_module, example_inputs):  # noqa: ANN001, ANN202
        graphs.append(graph_module)
        return graph_module.forward

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", lambda fn, **_: real_compile(fn, backend=backend))
    overrides = [*TINY, "model.compile=true", f"model.compile_eval={compile_eval}"]
    module = instantiate(compose_cfg("train", overrides, tmp_path).model)
    image, depth = torch.rand(1, 3, 64, 64), torch.rand(1, 1, 64, 64)
    batch = {"input": image, "guide": image, "input_depth": depth, "guide_depth": depth}
    torch._dynamo.reset()
    with torch.no_grad():
        module.eval()
        evaluated = module(batch)
        assert bool(graphs) is compile_eval
        compiled_for_eval = len(graphs)
        module.train()
        module(batch)
    assert len(graphs) > compiled_for_eval  # training always runs the compiled network
    assert evaluated.shape == (1, 3, 64, 64)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.compile_eval=true"], "compiles nothing without model.compile=true"),
        (
            ["model.compile=true", "model.compile_mode=reduce-overhead", "model.compile_eval=true"],
            "needs trainer.inference_mode=false",
        ),
    ],
)
def test_compile_eval_without_what_it_needs_is_a_config_error(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(compose_cfg("train", overrides, tmp_path))
    fine = [*overrides, "model.compile=true", "trainer.inference_mode=false"]
    validate_config(compose_cfg("train", fine, tmp_path))


@pytest.mark.parametrize("experiment", ["minividit_gpu", "s3net_paper"])
def test_gpu_experiments_validate_under_no_grad(tmp_path, experiment):
    """trainer=gpu: not inference_mode, for model.compile_eval=true with CUDA graphs."""
    cfg = compose_cfg("train", [f"experiment={experiment}", "data.root=/x"], tmp_path)
    validate_config(cfg)
    assert cfg.trainer.inference_mode is False


def test_gpu_main_job_turns_every_measured_switch_on(tmp_path):
    cfg = compose_cfg("train", ["experiment=minividit_gpu"], tmp_path)
    validate_config(cfg)
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "bf16-mixed"
    assert cfg.model.compile and cfg.model.compile_loss
    assert cfg.model.compile_mode == "reduce-overhead"
    assert cfg.model.optimizer.fused is True
    assert cfg.float32_matmul_precision == "auto"
    assert cfg.data.pin_memory and cfg.data.num_workers > 0
    # CUDA graphs need one batch shape: every training batch is full
    samples = cfg.data.train_scenes * cfg.data.samples_per_scene
    assert samples % cfg.data.batch_size == 0
    # the paper's model: its own output, Res2Net-101, attention, enhancement, depth
    net = cfg.model.net
    assert not net.global_residual and not net.global_colour
    assert net.encoder == "res2net101d" and net.attention and net.enhancement and net.depth
    assert cfg.trainer.max_time == "00:00:10:00"


def test_throughput_is_logged_every_epoch_and_printed(train_cfg, caplog):
    cfg = train_cfg(
        "trainer.max_epochs=2", "evaluate=false", "test=false", "model.optimizer.fused=true"
    )
    with caplog.at_level(logging.INFO, logger="relight.throughput"):
        metrics = train(cfg)
    assert metrics["train/items_per_s"] > 0 and metrics["train/items_per_s_warm"] > 0
    line = next(r.message for r in caplog.records if r.message.startswith("Trained "))
    assert int(line.split()[1]) > 0 and "items/s after the first epoch" in line
    csv = (Path(cfg.paths.output_dir) / "csv" / "metrics.csv").read_text()
    assert "train/items_per_s" in csv.splitlines()[0]


def test_throughput_rates_count_items_over_wall_time(monkeypatch):
    clock = iter([100.0, 102.0, 108.0])
    monkeypatch.setattr("relight.throughput.time.perf_counter", lambda: next(clock))
    callback = TrainingThroughput()
    callback.on_train_start(None, None)  # t = 100
    callback.items = 40
    assert callback.rates() == {"items_per_s": 20.0}  # t = 102: 40 items in 2 s
    callback.warm = (104.0, 40)  # the first epoch ended at t = 104
    callback.items = 120
    rates = callback.rates()  # t = 108: 120 items in 8 s, 80 of them in the last 4 s
    assert rates == {"items_per_s": 15.0, "items_per_s_warm": 20.0}


def test_compiled_network_and_loss_terms_make_every_tensor_on_the_inputs_device():
    """A tensor made on the CPU inside a graph compiled for a GPU turns CUDA graphs off for
    that graph (``model.compile_mode=reduce-overhead``). Meta tensors stand in for a GPU: the
    graphs of the compiled S3Net and of each loss term (``model.compile``, ``compile_loss``)
    hold meta tensors only, and dynamo meets no lru_cache it would warn about (SSIM's window
    is uncached when compiled). The composite's autocast guard cannot run on meta tensors."""
    from relight.losses import CompositeLoss
    from relight.models import S3Net

    graphs: list[torch.fx.GraphModule] = []

    def record(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    torch._dynamo.reset()
    net = S3Net(encoder="resnet18", encoder_weights="none").to("meta")
    loss = CompositeLoss(vgg_weights="none", perceptual_layers=["relu1_2"]).to("meta")
    x = torch.rand(2, 8, 64, 64, device="meta")
    target = torch.rand(2, 3, 64, 64, device="meta")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pred = torch.compile(net, backend=record)(x)
        for term in loss.terms.values():
            torch.compile(term, backend=record)(pred, target)
    values = [node.meta.get("example_value") for gm in graphs for node in gm.graph.nodes]
    devices = {str(v.device) for v in values if isinstance(v, torch.Tensor)}
    assert len(graphs) >= 1 + len(loss.terms) and devices == {"meta"}
    assert not [w for w in caught if "lru_cache" in str(w.message)]
