"""S3Net and its parts, the authors'-checkpoint converter, the weight-loading policy and the
monocular depth estimator for photos without a depth map."""

from relight.models.authors_checkpoint import (
    CheckpointConversionError,
    convert_authors_checkpoint,
)
from relight.models.blocks import AttentionBlock, EnhancementModule
from relight.models.monocular_depth import DEFAULT_DEPTH_MODEL, MonocularDepth, load_depth_model
from relight.models.s3net import S3Net, build_input
from relight.models.weights import WeightsUnavailableError, create_timm_model

__all__ = [
    "DEFAULT_DEPTH_MODEL",
    "AttentionBlock",
    "CheckpointConversionError",
    "EnhancementModule",
    "MonocularDepth",
    "S3Net",
    "WeightsUnavailableError",
    "build_input",
    "convert_authors_checkpoint",
    "create_timm_model",
    "load_depth_model",
]
