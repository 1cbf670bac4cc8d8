"""S3Net and its parts, the authors'-checkpoint converter and the weight-loading policy."""

from relight.models.authors_checkpoint import (
    CheckpointConversionError,
    convert_authors_checkpoint,
)
from relight.models.blocks import AttentionBlock, EnhancementModule
from relight.models.s3net import S3Net, build_input
from relight.models.weights import WeightsUnavailableError, create_timm_model

__all__ = [
    "AttentionBlock",
    "CheckpointConversionError",
    "EnhancementModule",
    "S3Net",
    "WeightsUnavailableError",
    "build_input",
    "convert_authors_checkpoint",
    "create_timm_model",
]
