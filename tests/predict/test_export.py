import onnx
import pytest

from relight.cli.export import main
from relight.export import export_onnx, onnx_max_abs_difference

from .conftest import small_s3net


@pytest.fixture(scope="module")
def exported(small_net, tmp_path_factory):
    return export_onnx(small_net, tmp_path_factory.mktemp("onnx") / "s3net.onnx")


def test_onnx_matches_pytorch_at_several_sizes(small_net, exported):
    """Dynamic axes: other batch sizes and H, W than the export example, at fp32."""
    sizes = [(1, 32, 48), (2, 128, 80), (1, 96, 208)]
    assert onnx_max_abs_difference(small_net, exported, sizes) <= 1e-4


def test_onnx_graph_has_dynamic_height_and_width(exported):
    model = onnx.load(exported)
    onnx.checker.check_model(model)
    (graph_input,) = model.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert graph_input.name == "input" and dims[1].dim_value == 8
    assert all(d.dim_param for d in (dims[0], dims[2], dims[3]))  # symbolic, not fixed
    assert "relight.net_config" in {p.key for p in model.metadata_props}


def test_export_command_from_a_checkpoint_without_depth(tmp_path, capsys):
    from .conftest import save_relight_checkpoint

    net = small_s3net(depth=False, enhancement=False)
    checkpoint = save_relight_checkpoint(net, tmp_path / "rgb_only.ckpt")
    output = tmp_path / "out" / "rgb_only.onnx"
    main(["--checkpoint", str(checkpoint), "--output", str(output), "--verify"])
    assert "max abs difference" in capsys.readouterr().out
    assert onnx_max_abs_difference(net, output, [(1, 16, 48)]) <= 1e-4  # 16: no enhancement
    assert sorted(p.name for p in output.parent.iterdir()) == ["rgb_only.onnx"]
