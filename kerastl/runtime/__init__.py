"""Helpers that kerastl's generated training scripts call.

Importing this package imports Keras. Every helper is a plain function or
class with no hidden global state. Its modules import each other relatively and
nothing else of kerastl, so that `kerastl new --standalone` can copy the package
beside a script, byte for byte, as `kerastl_runtime`. Import it before Keras, as
the scripts do, and TensorFlow's C++ start-up lines stay quiet (`quiet_start`).
"""

from .quiet import quiet_start
from .requirements import import_keras_hub_if_used, unmet_requirement
from .stops import stopped_by_ctrl_c

if _unmet := unmet_requirement():  # one line before anything loads, not mid-run
    raise SystemExit(_unmet)
try:
    with quiet_start():
        # TensorFlow loads and looks for GPUs here, printing lines no one can act on.
        import tensorflow

        tensorflow.config.list_physical_devices()
        import_keras_hub_if_used()  # its TensorFlow Text prints them again
except KeyboardInterrupt:  # Ctrl-C in the seconds TensorFlow takes to load
    raise SystemExit(stopped_by_ctrl_c()) from None

from .blocks import BlockRule, block_rule_of, find_blocks
from .cache import CACHE_CHOICES
from .class_balance import CLASS_WEIGHTS, class_weights, imbalance_warning
from .data import load_image_folders
from .data_checks import check_pixel_range
from .distribute import distribution_strategy, is_chief, worker_folder
from .errors import RangeTestDone, RunStopped, ScriptError
from .explain import grad_cam
from .export import export_format, export_model
from .features import feature_cache_hint
from .folders import scan_image_folder
from .history import read_history
from .hub import (
    check_image_size,
    converter_rescaling,
    pool_tokens,
    transformer_blocks,
)
from .hub_loading import loading_preset, preset_option
from .image_sets import load_test_folder
from .labels_file import save_labels
from .lora import add_lora, train_lora
from .lora_saving import load_adapters
from .metrics import classification_metrics
from .metrics_summary import summary_lines
from .models import loading_weights, save_model_checked
from .multilabel import WeightedBinaryCrossentropy, multi_label_loss
from .multilabel_metrics import choose_thresholds, multilabel_metrics
from .options import weights_option
from .precision import set_mixed_precision
from .predict import find_images, image_batches, top_k, write_predictions
from .predictions import predict_dataset
from .rates import layer_decay
from .report import write_report
from .report_plots import plot_confusion_matrix, plot_training_curves
from .run import Run
from .run_settings import RunSettings, run_setting
from .run_start import Phase
from .schedules import LR_SCHEDULES, warmup_cosine
from .settings import (
    parse_settings,
    setting,
    settings_record,
    training_settings,
)
from .ship import choose_model, ship
from .trainable import compile_checked, trainable_summary
from .training_data import (
    TrainingData,
    cache_training_features,
    load_training_data,
)
from .unfreeze import (
    check_unfreeze_stages,
    freeze,
    unfreeze,
    unfreeze_all,
    unfreeze_from,
    unfreeze_top_blocks,
    unfreeze_top_layers,
)

# The public API: what the templates call and docs/ (or the README) shows.
# Everything else is private to its module (importable from it, for tests);
# tests/test_runtime_api.py keeps this list and its uses in step.
__all__ = [
    "CACHE_CHOICES",
    "CLASS_WEIGHTS",
    "LR_SCHEDULES",
    "BlockRule",
    "Phase",
    "RangeTestDone",
    "Run",
    "RunSettings",
    "RunStopped",
    "ScriptError",
    "TrainingData",
    "WeightedBinaryCrossentropy",
    "add_lora",
    "block_rule_of",
    "cache_training_features",
    "check_image_size",
    "check_pixel_range",
    "check_unfreeze_stages",
    "choose_model",
    "choose_thresholds",
    "class_weights",
    "classification_metrics",
    "compile_checked",
    "converter_rescaling",
    "distribution_strategy",
    "export_format",
    "export_model",
    "feature_cache_hint",
    "find_blocks",
    "find_images",
    "freeze",
    "grad_cam",
    "image_batches",
    "imbalance_warning",
    "is_chief",
    "layer_decay",
    "load_adapters",
    "load_image_folders",
    "load_test_folder",
    "load_training_data",
    "loading_preset",
    "loading_weights",
    "multi_label_loss",
    "multilabel_metrics",
    "parse_settings",
    "plot_confusion_matrix",
    "plot_training_curves",
    "pool_tokens",
    "predict_dataset",
    "preset_option",
    "read_history",
    "run_setting",
    "save_labels",
    "save_model_checked",
    "scan_image_folder",
    "set_mixed_precision",
    "setting",
    "settings_record",
    "ship",
    "stopped_by_ctrl_c",
    "summary_lines",
    "top_k",
    "train_lora",
    "trainable_summary",
    "training_settings",
    "transformer_blocks",
    "unfreeze",
    "unfreeze_all",
    "unfreeze_from",
    "unfreeze_top_blocks",
    "unfreeze_top_layers",
    "warmup_cosine",
    "weights_option",
    "worker_folder",
    "write_predictions",
    "write_report",
]
