"""Helpers that kerastl's generated training scripts call.

Importing this package imports Keras. Every helper is a plain function or
class with no hidden global state; `kerastl new --standalone` copies the ones a
script uses into the script itself.
"""

from kerastl.runtime.callbacks import (
    HistoryLogger,
    read_history,
    standard_callbacks,
    warmup_cosine,
)
from kerastl.runtime.data import (
    FolderScan,
    check_num_classes,
    check_pixel_range,
    load_image_folders,
    save_labels,
    scan_image_folder,
)
from kerastl.runtime.errors import (
    DataError,
    ScriptError,
    TrainabilityError,
    UnfreezeError,
    WeightsError,
)
from kerastl.runtime.models import create_base_model, save_model_checked
from kerastl.runtime.predict import find_images, image_batches, top_k, write_predictions
from kerastl.runtime.resume import Phase, RunState
from kerastl.runtime.unfreeze import (
    check_unfreeze_stages,
    compile_checked,
    find_blocks,
    freeze,
    trainable_summary,
    unfreeze,
    unfreeze_all,
    unfreeze_from,
    unfreeze_top_blocks,
    unfreeze_top_layers,
)

__all__ = [
    "DataError",
    "FolderScan",
    "HistoryLogger",
    "Phase",
    "RunState",
    "ScriptError",
    "TrainabilityError",
    "UnfreezeError",
    "WeightsError",
    "check_num_classes",
    "check_pixel_range",
    "check_unfreeze_stages",
    "compile_checked",
    "create_base_model",
    "find_blocks",
    "find_images",
    "freeze",
    "image_batches",
    "load_image_folders",
    "read_history",
    "save_labels",
    "save_model_checked",
    "scan_image_folder",
    "standard_callbacks",
    "top_k",
    "trainable_summary",
    "unfreeze",
    "unfreeze_all",
    "unfreeze_from",
    "unfreeze_top_blocks",
    "unfreeze_top_layers",
    "warmup_cosine",
    "write_predictions",
]
