"""Data layer: dataset registry and fetching, image I/O, and the training patch loader.

>>> from proxiqa_lab.data import dataset_files, load_image
>>> img = load_image(dataset_files("kodak")[0])  # uint8 (512, 768, 3)
"""

from proxiqa_lab.data.datasets import (
    ChecksumError,
    DatasetStatus,
    dataset_files,
    fetch,
    fetch_command,
    get_dataset,
    status,
    training_files,
)
from proxiqa_lab.data.images import (
    SAMPLE_IMAGES_LABEL,
    ImageConversionWarning,
    load_image,
    sample_images,
    save_image,
    to_tensor,
    to_uint8,
)
from proxiqa_lab.data.loader import PatchLoader
from proxiqa_lab.data.registry import DATASETS, Dataset, data_root, mirror_root, sha256_file

__all__ = [
    "DATASETS",
    "SAMPLE_IMAGES_LABEL",
    "ChecksumError",
    "Dataset",
    "DatasetStatus",
    "ImageConversionWarning",
    "PatchLoader",
    "data_root",
    "dataset_files",
    "fetch",
    "fetch_command",
    "get_dataset",
    "load_image",
    "mirror_root",
    "sample_images",
    "save_image",
    "sha256_file",
    "status",
    "to_tensor",
    "to_uint8",
    "training_files",
]
