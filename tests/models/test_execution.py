import pytest
import torch

from relight.models import S3Net
from relight.models.execution import MODES, get_mode, prepare

SMALL = dict(encoder="resnet18", encoder_weights="none")


@pytest.fixture(scope="module")
def small_net():
    torch.manual_seed(0)
    return S3Net(**SMALL).eval()


@pytest.mark.parametrize("name", ["eager-fp32", "fp32-cl", "bf16", "bf16-cl"])
def test_modes_match_the_float32_reference(small_net, name):
    x = torch.rand(2, 8, 64, 48, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        reference = small_net.to(memory_format=torch.contiguous_format)(x)
    out = prepare(small_net, name)(x)
    assert out.dtype == torch.float32 and out.shape == reference.shape
    difference = (out - reference).abs().max()
    if MODES[name].autocast_dtype is not None:
        # bf16 really ran: its rounding shows (channels_last alone changes < 1e-7)
        assert 1e-5 < difference < 0.05
    else:
        assert difference < 1e-5
    if MODES[name].channels_last:
        assert small_net.encoder.conv1.weight.is_contiguous(memory_format=torch.channels_last)


class Replay(torch.nn.Module):
    """Stands in for a CUDA graph (which needs a GPU): every call writes its float32 output
    into the same buffer, as a graph's replay does."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net
        self.buffer: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x).float()
        if self.buffer is None:
            self.buffer = torch.empty_like(out)
        return self.buffer.copy_(out)


def test_graphs_mode_starts_a_step_per_call_and_owns_its_outputs(small_net, monkeypatch):
    compiled, steps = [], []
    monkeypatch.setattr(torch, "compile", lambda net, mode: compiled.append(mode) or Replay(net))
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: steps.append(1))
    run = prepare(small_net, "bf16-cl-graphs")
    generator = torch.Generator().manual_seed(2)
    first = run(torch.rand(1, 8, 64, 48, generator=generator))
    kept = first.clone()
    second = run(torch.rand(1, 8, 64, 48, generator=generator))
    assert compiled == ["reduce-overhead"] and len(steps) == 2
    assert first.dtype == torch.float32 and torch.equal(first, kept)  # not the next replay's
    assert not torch.equal(first, second)


def test_every_compile_mode_that_records_cuda_graphs_starts_a_step(monkeypatch):
    """max-autotune records CUDA graphs too: without a step mark, graph memory reuse falls
    back to heuristics."""
    from relight.models.execution import COMPILE_MODES, CUDA_GRAPH_MODES, begin_compiled_step

    graphs = [
        m for m in COMPILE_MODES if torch._inductor.list_mode_options(m).get("triton.cudagraphs")
    ]
    assert list(CUDA_GRAPH_MODES) == graphs  # fails when torch changes which modes record
    steps = []
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: steps.append(1))
    for mode in (None, *COMPILE_MODES):
        begin_compiled_step(mode)
    assert len(steps) == len(CUDA_GRAPH_MODES)


def test_unknown_mode_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown execution mode 'fp16'.*bf16-cl"):
        get_mode("fp16")


def test_activation_checkpointing_gives_the_same_gradients_and_buffers():
    torch.manual_seed(0)
    plain = S3Net(**SMALL)
    checkpointed = S3Net(**SMALL, activation_checkpointing=True)
    checkpointed.load_state_dict(plain.state_dict())
    calls = []
    checkpointed.encoder.layer2.register_forward_pre_hook(lambda *_: calls.append(1))
    x = torch.rand(2, 8, 64, 64, generator=torch.Generator().manual_seed(2))
    for net in (plain, checkpointed):
        net.train()
        net(x).square().mean().backward()
    assert len(calls) == 2  # forward, then recomputed in backward: checkpointing is on
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=name)
    # the recomputation must not update BatchNorm's running statistics a second time
    for (name, a), b in zip(plain.named_buffers(), checkpointed.buffers(), strict=True):
        torch.testing.assert_close(a, b, msg=name)


def test_activation_checkpointing_is_off_at_inference():
    net = S3Net(**SMALL, activation_checkpointing=True).eval()
    calls = []
    net.encoder.layer2.register_forward_pre_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        net(torch.rand(1, 8, 64, 64))
    assert len(calls) == 1


def test_a_compile_failure_names_the_eager_mode_with_the_same_arithmetic(no_cxx_compiler):
    from relight.cli.errors import expected
    from relight.models.execution import CompileFailedError

    run = prepare(torch.nn.Conv2d(8, 3, 1), "bf16-cl-compile")
    with pytest.raises(CompileFailedError) as info:
        run(torch.rand(1, 8, 8, 8))
    message = str(info.value)
    assert message.startswith("torch.compile failed (execution mode bf16-cl-compile): ")
    assert "No working C++ compiler" in message  # the cause, in one line
    assert "Run without it: mode bf16-cl (the same arithmetic, eager)" in message
    assert expected(info.value)  # a console script ends in that one line
    assert prepare(torch.nn.Conv2d(8, 3, 1), "bf16-cl")(torch.rand(1, 8, 8, 8)).shape[1] == 3


def test_errors_of_the_traced_code_are_not_called_compile_failures():
    """A device mismatch in the traced code is the code's error, not torch.compile's: it
    passes unchanged, like any other error."""
    import torch._dynamo.exc as dynamo

    from relight.models.execution import explain_compile_failure

    for error in (dynamo.TorchRuntimeError("tensors on different devices"), ValueError("bad")):
        with pytest.raises(type(error)) as info, explain_compile_failure("mode x", "mode y"):
            raise error
        assert info.value is error
