import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "demo.ipynb"


def test_demo_notebook_runs(trained_checkpoint, tiny_data, monkeypatch, tmp_path):
    monkeypatch.setenv("RELIGHT_CKPT", str(trained_checkpoint))
    monkeypatch.setenv("RELIGHT_PAIRS", str(tiny_data["pairs"]))
    monkeypatch.setenv("RELIGHT_SIZE", "64")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(env=dict(os.environ))
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the panel and the attention maps
    text = "".join(o.get("text", "") for o in outputs)
    assert "PSNR" in text and "attention16" in text
