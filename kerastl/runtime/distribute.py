"""Training on several devices or machines with tf.distribute, from one script.

`distribution_strategy()` turns `--strategy` into a `tf.distribute.Strategy`:
the model and its optimizer are created in `strategy.scope()`, and each batch
of the data is split among the strategy's replicas (`--batch-size` is per
replica). Under `MultiWorkerMirroredStrategy` every worker process runs the
whole script; only the chief writes the output folder (`is_chief`), the others
write the same files into a temporary folder of their own (`worker_folder`),
as TensorFlow's multi-worker guide prescribes.
"""

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator

import keras
import tensorflow as tf

from .errors import ScriptError
from .keras_internals import private, private_module

#: What needs Keras's private names here, for the error where one is missing.
MULTI_WORKER = "--strategy multi-worker"

STRATEGIES = ("auto", "none", "mirrored", "multi-worker", "tpu")


class DistributionError(ScriptError):
    """The requested distribution strategy cannot be set up."""


def distribution_strategy(
    name: str, *, tpu: str | None = None, batch_size: int
) -> tf.distribute.Strategy:
    """The strategy `name` stands for; prints it with its replicas and batch size.

    Args:
        name: "auto" (MirroredStrategy when several GPUs are visible, else
            none), "none" (TensorFlow's default: one device), "mirrored" (all
            visible GPUs of this machine, or its logical CPU devices when it
            has no GPU), "multi-worker" (MultiWorkerMirroredStrategy, its
            cluster read from the TF_CONFIG environment variable) or "tpu".
        tpu: The TPU's name or grpc:// address for "tpu"; None for a TPU
            attached to this machine (or named by the environment).
        batch_size: Images per replica, for the printed line.

    Raises:
        DistributionError: If `name` is unknown, TF_CONFIG is missing or
            invalid for "multi-worker", or the TPU cannot be reached.
    """
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        strategy = (
            tf.distribute.MirroredStrategy([gpu.name for gpu in gpus])
            if len(gpus) > 1
            else tf.distribute.get_strategy()
        )
    elif name == "none":
        strategy = tf.distribute.get_strategy()
    elif name == "mirrored":
        devices = tf.config.list_logical_devices(
            "GPU"
        ) or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([device.name for device in devices])
    elif name == "multi-worker":
        check_tf_config(os.environ.get("TF_CONFIG"))
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif name == "tpu":
        strategy = _tpu_strategy(tpu)
    else:
        raise DistributionError(
            f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}"
        )
    print(strategy_line(strategy, batch_size))
    return strategy


def strategy_line(strategy: tf.distribute.Strategy, batch_size: int) -> str:
    """One line: the strategy, its replicas, the batch per replica and in all."""
    replicas = strategy.num_replicas_in_sync
    if is_default(strategy):
        return f"Distribution: none, one device; batch size {batch_size}."
    name, where = type(strategy).__name__, ""
    resolver = getattr(strategy, "cluster_resolver", None)
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and resolver:
        name = "MultiWorkerMirroredStrategy"  # its class is CollectiveAllReduceStrategy
        workers = len(resolver.cluster_spec().as_dict().get("worker", [])) + len(
            resolver.cluster_spec().as_dict().get("chief", [])
        )
        where = f" on {workers} workers ({resolver.task_type} {resolver.task_id} here)"
    return (
        f"Distribution: {name}{where}, {replicas} replicas; "
        f"batch size {batch_size} per replica, {batch_size * replicas} in all."
    )


def check_tf_config(text: str | None) -> dict:
    """The cluster of a multi-worker run, as the TF_CONFIG variable describes it.

    Raises:
        DistributionError: If TF_CONFIG is not set, not JSON, or lacks the
            cluster or this process's task in it.
    """
    example = (
        'e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
        '"task": {"type": "worker", "index": 0}}\''
    )
    if not text:
        raise DistributionError(
            f"--strategy multi-worker reads the cluster from TF_CONFIG, which is not set; {example}"
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise DistributionError(f"TF_CONFIG is not valid JSON ({error})") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise DistributionError(f"TF_CONFIG needs a 'cluster' and a 'task'; {example}")
    addresses = cluster.get(task.get("type"))
    index = task.get("index")
    if (
        not isinstance(addresses, list)
        or not isinstance(index, int)
        or not 0 <= index < len(addresses)
    ):
        raise DistributionError(
            f"TF_CONFIG's task {task} is not in its cluster {cluster}"
        )
    return config


def is_default(strategy: tf.distribute.Strategy) -> bool:
    """Whether `strategy` is TensorFlow's default one: no distribution at all."""
    return type(strategy).__name__ == "_DefaultDistributionStrategy"


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the output folder.

    Under MultiWorkerMirroredStrategy that is the "chief" task, or worker 0 in
    a cluster without one; under every other strategy, the only process.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None or task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def worker_folder(
    output_dir: str | os.PathLike, strategy: tf.distribute.Strategy
) -> str:
    """The folder this process writes: `output_dir` for the chief, else a temporary one.

    The other workers of a multi-worker run save the same files as the chief
    (saving takes every worker), into a folder of their own under the system's
    temporary folder, named after the task and the process.
    """
    if is_chief(strategy):
        return os.fspath(output_dir)
    resolver = strategy.cluster_resolver
    name = f"kerastl-{resolver.task_type}-{resolver.task_id}-{os.getpid()}"
    return os.path.join(tempfile.gettempdir(), name)


def check_same_run(
    strategy: tf.distribute.Strategy, state: dict | None, output_dir: str
) -> None:
    """Stops a multi-worker run whose workers read different saved runs.

    Every worker resumes from the state it read in `output_dir`; workers that
    resume from different epochs would wait for each other forever.

    Raises:
        DistributionError: If the workers read different progress.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    checkpoint = (state or {}).get("checkpoint") or {}
    progress = len((state or {}).get("completed", [])) * 1_000_000 + int(
        checkpoint.get("epoch", 0)
    )
    # Equal everywhere exactly when the mean of the value and of its square match it.
    value = tf.constant([progress, progress**2], tf.float64)
    mean = strategy.reduce("MEAN", value, axis=None).numpy()
    if mean.tolist() != value.numpy().tolist():
        raise DistributionError(
            f"the workers found different saved runs in {output_dir}: "
            "--output-dir must be one folder that every worker reads "
            "(a shared file system), or pass --restart"
        )


@contextlib.contextmanager
def fitting_in(strategy: tf.distribute.Strategy, model: keras.Model) -> Iterator[None]:
    """The scope in which `model.fit()` trains on every replica of `strategy`.

    Under MultiWorkerMirroredStrategy it also works around two bugs of Keras 3
    (keras-team/keras#20585) for the duration: `fit()` averages a batch of
    images with `strategy.reduce()` before training, and the logs of each
    step with `axis=0`, which scalars lack; both fail across workers. The
    model then builds when it is traced, and the logs are averaged whole.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        with strategy.scope():
            yield
        return
    trainer = private_module(
        "keras.src.backend.tensorflow.trainer", purpose=MULTI_WORKER
    )
    reduce_per_replica = private(trainer, "reduce_per_replica", purpose=MULTI_WORKER)

    def reduce_logs(values, strategy, reduction):
        if reduction not in ("auto", "mean"):
            return reduce_per_replica(values, strategy, reduction)
        return tf.nest.map_structure(
            lambda value: strategy.reduce("MEAN", value, axis=None), values
        )

    own_strategy = private(model, "_distribute_strategy", purpose=MULTI_WORKER)
    model._distribute_strategy = None  # Keras then takes the one of the scope
    trainer.reduce_per_replica = reduce_logs
    try:
        with strategy.scope():
            yield
    finally:
        trainer.reduce_per_replica = reduce_per_replica
        model._distribute_strategy = own_strategy


def _tpu_strategy(tpu: str | None) -> tf.distribute.Strategy:
    """Connects to the TPU `tpu` (a name or address), initializes it, returns its strategy."""
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or None)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        text = str(error).strip().splitlines()
        where = f"TPU {tpu!r}" if tpu else "a TPU (no --tpu given)"
        raise DistributionError(
            f"cannot reach {where}: {text[0] if text else type(error).__name__}"
        ) from None
    return tf.distribute.TPUStrategy(resolver)
