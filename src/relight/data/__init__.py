"""Data: file formats, the VIDIT index and splits, guide sampling, pairs, the DataModule.

The DataModules (Lightning) are imported on first use: see :mod:`relight.lazy_exports`.
"""

from typing import TYPE_CHECKING

from relight.data.bad_items import BadItemPolicy, TooManyBadItemsError
from relight.data.check import CheckReport, DataFolder, Problem, check_folders, find_folders
from relight.data.datasets import FixedTripletDataset, PairsDataset, TripletDataset
from relight.data.formats import DataFormatError, read_depth, read_image
from relight.data.pairs import PairFiles, index_pairs
from relight.data.sampling import EpochSampler, GuideSampler, Triplet
from relight.data.vidit import DIRECTIONS, TEMPERATURES, Lighting, Scene, index_vidit, split_scenes
from relight.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from relight.data.datamodule import MiniVIDITDataModule, VIDITDataModule

__getattr__ = lazy_exports(
    __name__,
    {name: "relight.data.datamodule" for name in ("MiniVIDITDataModule", "VIDITDataModule")},
)

__all__ = [
    "DIRECTIONS",
    "TEMPERATURES",
    "BadItemPolicy",
    "CheckReport",
    "DataFolder",
    "DataFormatError",
    "EpochSampler",
    "FixedTripletDataset",
    "GuideSampler",
    "Lighting",
    "MiniVIDITDataModule",
    "PairFiles",
    "PairsDataset",
    "Problem",
    "Scene",
    "Triplet",
    "TooManyBadItemsError",
    "TripletDataset",
    "VIDITDataModule",
    "check_folders",
    "find_folders",
    "index_pairs",
    "index_vidit",
    "read_depth",
    "read_image",
    "split_scenes",
]
