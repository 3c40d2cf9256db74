"""Datasets: readers for the shared data (CamVid, coco128-seg, DAVIS 2016, COCO panoptic format),
synthetic scenes, and the registry that turns them into model-ready samples."""

from .common import ClassInfo, RawExample, data_root
from .registry import MixtureDataset, PanopticDataset, build_dataset, dataset_classes, model_classes

__all__ = ["ClassInfo", "RawExample", "data_root", "MixtureDataset", "PanopticDataset", "build_dataset", "dataset_classes",
           "model_classes"]
