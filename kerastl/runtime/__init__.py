"""Helpers that kerastl's generated training scripts call.

Importing this package imports Keras. Every helper is a plain function or
class with no hidden global state; `kerastl new --standalone` copies the ones a
script uses into the script itself.
"""

from kerastl.runtime.data import (
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
from kerastl.runtime.distribute import (
    DistributionError,
    distribution_strategy,
    is_chief,
    worker_folder,
)
from kerastl.runtime.errors import (
    DataError,
    DivergedError,
    RunMismatchError,
    ScriptError,
    TrainabilityError,
    UnfreezeError,
    WeightsError,
)
from kerastl.runtime.export import (
    ExportError,
    export_format,
    export_model,
    load_artifact,
)
from kerastl.runtime.features import (
    FeatureCacheHint,
    cache_features,
    feature_cache_hint,
    split_at,
)
from kerastl.runtime.history import read_history
from kerastl.runtime.models import (
    has_finite_weights,
    loading_weights,
    save_model_atomic,
    save_model_checked,
)
from kerastl.runtime.options import int_range, positive_float, weights_option
from kerastl.runtime.precision import set_mixed_precision
from kerastl.runtime.predict import find_images, image_batches, top_k, write_predictions
from kerastl.runtime.report import (
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
from kerastl.runtime.run import Phase, Run
from kerastl.runtime.schedules import warmup_cosine
from kerastl.runtime.unfreeze import (
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
    "UnfreezeError",
    "WeightsError",
    "block_rule_of",
    "cache_features",
    "check_num_classes",
    "check_pixel_range",
    "check_unfreeze_stages",
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
    "int_range",
    "is_chief",
    "load_artifact",
    "load_image_folders",
    "load_test_folder",
    "loading_weights",
    "most_confused",
    "plot_confusion_matrix",
    "plot_image_grid",
    "plot_top_losses",
    "plot_training_curves",
    "positive_float",
    "predict_dataset",
    "read_history",
    "save_labels",
    "save_model_atomic",
    "save_model_checked",
    "scan_image_folder",
    "set_mixed_precision",
    "split_at",
    "summary_lines",
    "top_k",
    "trainable_summary",
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
