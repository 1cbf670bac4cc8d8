"""A user's own experiment folder, as docs/install.md shows it: an experiment, a loss option
with a term of their own, and the module defining that term (importable from the working
directory). Shared by the config tests and the installed-wheel tests."""

from __future__ import annotations

from pathlib import Path

USER_FILES = {
    "my_exps/experiment/foo.yaml": """\
# @package _global_
defaults:
  - override /loss: with_brightness
run_name: foo
model:
  net:
    encoder: resnet18          # any timm encoder with features at strides 4, 8, 16
    encoder_weights: none
""",
    "my_exps/loss/with_brightness.yaml": """\
defaults:
  - s3net                      # the paper's terms, checked by relight's loss schema
  - _self_
perceptual: 0.0
extra_terms:
  brightness:
    weight: 0.1
    term:
      _target_: my_terms.Brightness
      target_mean: 0.5
""",
    "my_terms.py": """\
import torch


class Brightness(torch.nn.Module):
    \"\"\"Keeps the mean brightness of the prediction near a value.\"\"\"

    def __init__(self, target_mean: float = 0.5) -> None:
        super().__init__()
        self.target_mean = target_mean

    def forward(self, prediction, target):
        return (prediction.mean() - self.target_mean).abs()
""",
}


def write_user_experiment(folder: Path) -> Path:
    """Write :data:`USER_FILES` into ``folder``; returns it."""
    for name, text in USER_FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder
