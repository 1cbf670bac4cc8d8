"""Training losses: Charbonnier, W-SSIM, VGG19 perceptual and their weighted composite."""

from relight.losses.composite import CompositeLoss
from relight.losses.perceptual import VGG19_LAYERS, PerceptualLoss
from relight.losses.pixel import CharbonnierLoss
from relight.losses.wssim import WSSIMLoss, haar_bands, wssim_weights

__all__ = [
    "VGG19_LAYERS",
    "CharbonnierLoss",
    "CompositeLoss",
    "PerceptualLoss",
    "WSSIMLoss",
    "haar_bands",
    "wssim_weights",
]
