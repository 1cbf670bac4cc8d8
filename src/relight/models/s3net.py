"""S3Net (Yang et al., CVPR-W 2021): a single-stream encoder-decoder for depth-guided relighting.

Structure as the authors' released ``Dehaze3``; sizes at an HxW input:

    input (B, 8, H, W) = [input RGB, guide RGB, input depth, guide depth]
    encoder (Res2Net-101 v1b, stages 1-3): 256 @ H/4, 512 @ H/8, 1024 @ H/16
    attention16 (1024) -> PixelShuffle -> 256 @ H/8 -> attention8 (256)
    cat stage-2 (512) -> 768 -> PixelShuffle -> 192 @ H/4 -> attention4 (192)
    cat stage-1 (256) -> 448 -> PixelShuffle x2 -> 28 @ H
    enhancement (28) -> reflect pad 3, conv7x7 28->3 -> tanh

``global_residual``/``residual_form`` and ``global_colour`` are variants for short runs,
not the paper's model (off by default).
"""

from __future__ import annotations

from dataclasses import asdict

import torch
import torch.nn.functional as F
from torch import nn

from relight.models.blocks import AttentionBlock, EnhancementModule
from relight.models.checkpointing import checkpointed_features, supports_checkpointing
from relight.models.weights import create_timm_model
from relight.signatures import signature_dataclass

#: Number of input channels with and without the two depth maps.
IN_CHANNELS = {True: 8, False: 6}
#: How the global residual combines the input RGB and the tail (see :class:`S3Net`).
RESIDUAL_FORMS = ("inside_tanh", "outside_tanh", "gain")
#: Height and width must be multiples of this (the encoder's total stride).
SIZE_MULTIPLE = 16


class S3Net(nn.Module):
    """S3Net relighting network.

    Args:
        attention: keep channel + pixel attention in the three decoder blocks (the
            residual convolutions stay either way).
        enhancement: use the pyramid-pooling enhancement module (identity otherwise).
        depth: take the two depth maps (8 input channels) or RGB only (6 channels).
        encoder: any timm model that supports ``features_only`` with three stages at
            strides 4, 8, 16 (``out_indices=(1, 2, 3)``); ``res2net101d`` is the paper's.
        encoder_weights: ``"imagenet"``, ``"none"`` or a local weights file
            (see :mod:`relight.models.weights`).
        allow_random_init: warn instead of failing when ImageNet weights are missing.
        adapt_stem: keep timm's adaptation of the RGB stem weights to the extra input
            channels; by default the first conv is freshly initialised, as the authors do.
        global_residual: add the input RGB to the output, as ``residual_form`` says (a
            variant in the authors' code, not the paper's model).
        residual_form: how ``global_residual`` combines the input RGB ``x`` with the tail
            ``t``: ``inside_tanh``: ``tanh(t + x)`` (the authors'); ``outside_tanh``:
            ``x + tanh(t)``; ``gain``: ``x * exp(2 tanh(t))``, a per-pixel, per-channel gain
            in [0.14, 7.4] (a light's colour and its shading multiply the image). The last
            two are the identity when the tail gives 0, so a short training run starts
            from the input image (their values can leave [0, 1]; evaluation clamps).
        global_colour: add a per-image, per-channel offset to the tail, a linear map of
            the stride-16 features averaged over the image (zero at initialisation). With
            the ``gain`` form it is a global colour gain: the change of the light's colour
            is one value per channel for the whole image, which the convolutional decoder
            otherwise has to rebuild at every pixel from local features.
        activation_checkpointing: recompute the encoder stages' activations in the
            backward pass instead of storing them (less training memory, more compute;
            no effect at inference).

    ``forward`` takes (B, 8, H, W) (or 6 without depth) in [0, 1] with H, W multiples of
    16 (and at least 32 with the enhancement module) and returns (B, 3, H, W) in [-1, 1]
    (other ranges with the ``outside_tanh`` and ``gain`` residual forms).
    """

    def __init__(
        self,
        attention: bool = True,
        enhancement: bool = True,
        depth: bool = True,
        encoder: str = "res2net101d",
        encoder_weights: str | None = "imagenet",
        allow_random_init: bool = False,
        adapt_stem: bool = False,
        global_residual: bool = False,
        residual_form: str = "inside_tanh",
        global_colour: bool = False,
        activation_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        check_residual_form(residual_form)
        arguments = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        arguments["encoder_weights"] = "none" if encoder_weights is None else str(encoder_weights)
        self.config = S3NetConfig(**arguments)
        self.in_channels = IN_CHANNELS[depth]
        self.encoder = create_timm_model(
            encoder,
            self.config.encoder_weights,
            allow_random_init=allow_random_init,
            what=f"the S3Net encoder '{encoder}'",
            features_only=True,
            out_indices=(1, 2, 3),
            in_chans=self.in_channels,
        )
        if activation_checkpointing and not supports_checkpointing(self.encoder):
            raise ValueError(
                f"activation_checkpointing: encoder '{encoder}' is not a timm feature list "
                f"({type(self.encoder).__name__}); turn it off for this encoder"
            )
        reductions = tuple(self.encoder.feature_info.reduction())
        if reductions != (4, 8, 16):
            raise ValueError(
                f"encoder '{encoder}' gives features at strides {reductions}; S3Net needs (4, 8, 16)"
            )
        if not adapt_stem and self.config.encoder_weights.lower() != "none":
            self._reset_stem()
        c4, c8, c16 = self.encoder.feature_info.channels()
        if c16 % 4 or (c16 // 4 + c8) % 4 or ((c16 // 4 + c8) // 4 + c4) % 16:
            raise ValueError(
                f"encoder '{encoder}' channels {(c4, c8, c16)} do not divide through three "
                "PixelShuffle(2) steps"
            )
        width16, width8 = c16 // 4, (c16 // 4 + c8) // 4
        width2 = (width8 + c4) // 4
        self.attention16 = AttentionBlock(c16, attention)
        self.attention8 = AttentionBlock(width16, attention)
        self.attention4 = AttentionBlock(width8, attention)
        self.shuffle = nn.PixelShuffle(2)
        self.head_channels = width2 // 4
        self.enhancement: nn.Module = (
            EnhancementModule(self.head_channels) if enhancement else nn.Identity()
        )
        self.tail = nn.Conv2d(self.head_channels, 3, 7)
        self.global_colour = nn.Linear(c16, 3) if global_colour else None
        if self.global_colour is not None:
            nn.init.zeros_(self.global_colour.weight)
            nn.init.zeros_(self.global_colour.bias)

    def _reset_stem(self) -> None:
        """Re-initialise the first conv (the authors' stem is a fresh 8->32 conv)."""
        first = next(m for m in self.encoder.modules() if isinstance(m, nn.Conv2d))
        first.reset_parameters()

    @property
    def min_size(self) -> int:
        """The smallest height/width the network accepts."""
        return max(EnhancementModule.pool_sizes) if self.config.enhancement else SIZE_MULTIPLE

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is (B, in_channels, H, W) with valid H, W."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            layout = (
                "input RGB, guide RGB, input depth, guide depth"
                if self.config.depth
                else "input RGB, guide RGB"
            )
            raise ValueError(
                f"S3Net expects a (B, {self.in_channels}, H, W) tensor ({layout}); "
                f"got shape {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE or min(h, w) < self.min_size:
            raise ValueError(
                f"S3Net needs height and width that are multiples of {SIZE_MULTIPLE} and at "
                f"least {self.min_size}; got {h}x{w}. Pad the input (relight's inference "
                "code does this) or resize it."
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        skip4, skip8, features16 = self._encode(x)
        y = self.attention8(self.shuffle(self.attention16(features16)))
        y = self.attention4(self.shuffle(torch.cat([y, skip8], dim=1)))
        y = self.shuffle(self.shuffle(torch.cat([y, skip4], dim=1)))
        y = self.tail(F.pad(self.enhancement(y), (3, 3, 3, 3), mode="reflect"))
        if self.global_colour is not None:
            y = y + self.global_colour(features16.mean(dim=(2, 3)))[:, :, None, None]
        if not self.config.global_residual:
            return torch.tanh(y)
        if self.config.residual_form == "outside_tanh":
            return x[:, :3] + torch.tanh(y)
        if self.config.residual_form == "gain":
            return x[:, :3] * torch.exp(2 * torch.tanh(y))
        return torch.tanh(y + x[:, :3])

    def _encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.config.activation_checkpointing and torch.is_grad_enabled():
            return checkpointed_features(self.encoder, x)
        return self.encoder(x)

    def hparams(self) -> dict[str, object]:
        """The constructor arguments, for logging and checkpoints."""
        return asdict(self.config)


def check_residual_form(form: str) -> str:
    """``form`` when it is one of :data:`RESIDUAL_FORMS`, else a ``ValueError``."""
    if form not in RESIDUAL_FORMS:
        raise ValueError(
            f"model.net.residual_form must be one of {', '.join(RESIDUAL_FORMS)}, got '{form}'"
        )
    return form


#: S3Net's arguments, kept as ``net.config`` (read off the signature: each default once).
S3NetConfig = signature_dataclass("S3NetConfig", S3Net)


def build_input(
    image: torch.Tensor,
    guide: torch.Tensor,
    image_depth: torch.Tensor | None = None,
    guide_depth: torch.Tensor | None = None,
) -> torch.Tensor:
    """Concatenate the network input in the authors' order: RGB, guide RGB, depth, guide depth.

    Depth maps may be (B, H, W) or (B, 1, H, W); pass neither for the RGB-only variant.
    """
    if (image_depth is None) != (guide_depth is None):
        raise ValueError("give both depth maps or neither")
    parts = [image, guide]
    if image_depth is not None and guide_depth is not None:
        parts += [d if d.ndim == 4 else d.unsqueeze(1) for d in (image_depth, guide_depth)]
    sizes = {tuple(p.shape[-2:]) for p in parts}
    if len(sizes) != 1:
        raise ValueError(f"images and depth maps differ in size: {sorted(sizes)}")
    return torch.cat(parts, dim=1)


def batch_input(batch: dict[str, torch.Tensor], depth: bool = True) -> torch.Tensor:
    """The network input of a data batch dict (``input``, ``guide``, ``input_depth``,
    ``guide_depth``); without ``depth`` the depth maps are left out."""
    if depth:
        return build_input(
            batch["input"], batch["guide"], batch["input_depth"], batch["guide_depth"]
        )
    return build_input(batch["input"], batch["guide"])
