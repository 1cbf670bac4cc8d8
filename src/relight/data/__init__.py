"""Data: file formats, the VIDIT index and splits, guide sampling, pairs, the DataModule."""

from relight.data.datamodule import MiniVIDITDataModule, VIDITDataModule
from relight.data.datasets import FixedTripletDataset, PairsDataset, TripletDataset
from relight.data.formats import DataFormatError, read_depth, read_image
from relight.data.pairs import PairFiles, index_pairs
from relight.data.sampling import EpochSampler, GuideSampler, Triplet
from relight.data.vidit import DIRECTIONS, TEMPERATURES, Lighting, Scene, index_vidit, split_scenes

__all__ = [
    "DIRECTIONS",
    "TEMPERATURES",
    "DataFormatError",
    "EpochSampler",
    "FixedTripletDataset",
    "GuideSampler",
    "Lighting",
    "MiniVIDITDataModule",
    "PairFiles",
    "PairsDataset",
    "Scene",
    "Triplet",
    "TripletDataset",
    "VIDITDataModule",
    "index_pairs",
    "index_vidit",
    "read_depth",
    "read_image",
    "split_scenes",
]
