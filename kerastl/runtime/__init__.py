"""Helpers that kerastl's generated training scripts call.

Importing this package imports Keras. Every helper is a plain function or
class with no hidden global state. Its modules import each other relatively and
nothing else of kerastl, so that `kerastl new --standalone` can copy the package
beside a script, byte for byte, as `kerastl_runtime`. Import it before Keras, as
the scripts do, and TensorFlow's C++ start-up lines stay quiet (`quiet_start`).
"""

from .quiet import quiet_start
from .requirements import unmet_requirement
from .stops import stopped_by_ctrl_c

if _unmet := unmet_requirement():  # one line before anything loads, not mid-run
    raise SystemExit(_unmet)
try:
    with quiet_start():
        # TensorFlow loads and looks for GPUs here, printing lines no one can act on.
        import tensorflow

        tensorflow.config.list_physical_devices()
except KeyboardInterrupt:  # Ctrl-C in the seconds TensorFlow takes to load
    raise SystemExit(stopped_by_ctrl_c()) from None

from .cache import CACHE_CHOICES
from .data import (
    CLASS_WEIGHTS,
    FolderScan,
    check_num_classes,
    check_pixel_range,
    class_weights,
    imbalance_warning,
    load_image_folders,
    load_test_folder,
    save_labels,
    scan_image_folder,
)
from .distribute import (
    STRATEGIES,
    DistributionError,
    distribution_strategy,
    is_chief,
    worker_folder,
)
from .errors import (
    DataError,
    DivergedError,
    RunMismatchError,
    ScriptError,
    TrainabilityError,
    UnfreezeError,
    WeightsError,
)
from .export import (
    EXPORT_FORMATS,
    QUANTIZATIONS,
    ExportError,
    export_format,
    export_model,
    load_artifact,
)
from .features import (
    FeatureCacheHint,
    cache_features,
    feature_cache_hint,
    split_at,
)
from .history import read_history
from .models import (
    has_finite_weights,
    loading_weights,
    save_model_atomic,
    save_model_checked,
)
from .options import weights_option
from .platforms import VERTEX_AI_CHECKPOINT_DIR
from .precision import PRECISION_CHOICES, set_mixed_precision
from .predict import find_images, image_batches, top_k, write_predictions
from .rates import layer_decay
from .report import (
    TopLosses,
    classification_metrics,
    most_confused,
    plot_confusion_matrix,
    plot_image_grid,
    plot_top_losses,
    plot_training_curves,
    predict_dataset,
    summary_lines,
    write_report,
)
from .run import Phase, Run
from .schedules import LR_SCHEDULES, warmup_cosine
from .settings import (
    parse_settings,
    setting,
    settings_record,
    training_settings,
)
from .ship import choose_model
from .training_data import (
    TrainingData,
    cache_training_features,
    load_training_data,
)
from .unfreeze import (
    BlockRule,
    block_rule_of,
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
    "CACHE_CHOICES",
    "CLASS_WEIGHTS",
    "EXPORT_FORMATS",
    "LR_SCHEDULES",
    "PRECISION_CHOICES",
    "QUANTIZATIONS",
    "STRATEGIES",
    "VERTEX_AI_CHECKPOINT_DIR",
    "BlockRule",
    "DataError",
    "DistributionError",
    "DivergedError",
    "ExportError",
    "FeatureCacheHint",
    "FolderScan",
    "Phase",
    "Run",
    "RunMismatchError",
    "ScriptError",
    "TopLosses",
    "TrainabilityError",
    "TrainingData",
    "UnfreezeError",
    "WeightsError",
    "block_rule_of",
    "cache_features",
    "cache_training_features",
    "check_num_classes",
    "check_pixel_range",
    "check_unfreeze_stages",
    "choose_model",
    "class_weights",
    "classification_metrics",
    "compile_checked",
    "distribution_strategy",
    "export_format",
    "export_model",
    "feature_cache_hint",
    "find_blocks",
    "find_images",
    "freeze",
    "has_finite_weights",
    "image_batches",
    "imbalance_warning",
    "is_chief",
    "layer_decay",
    "load_artifact",
    "load_image_folders",
    "load_test_folder",
    "load_training_data",
    "loading_weights",
    "most_confused",
    "parse_settings",
    "plot_confusion_matrix",
    "plot_image_grid",
    "plot_top_losses",
    "plot_training_curves",
    "predict_dataset",
    "quiet_start",
    "read_history",
    "save_labels",
    "save_model_atomic",
    "save_model_checked",
    "scan_image_folder",
    "set_mixed_precision",
    "setting",
    "settings_record",
    "split_at",
    "stopped_by_ctrl_c",
    "summary_lines",
    "top_k",
    "trainable_summary",
    "training_settings",
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
