"""Face data: dataset readers, detection + alignment, the aligned-crop cache, protocol splits."""

from .prepare import PreparedDataset, prepare
from .readers import DATASETS, LFW, FolderPerIdentity, ImageRecord, PreAligned, open_dataset

__all__ = ["DATASETS", "LFW", "FolderPerIdentity", "ImageRecord", "PreAligned", "PreparedDataset", "open_dataset", "prepare"]
