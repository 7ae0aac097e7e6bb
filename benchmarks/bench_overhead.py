"""What a run costs beyond its training: the README demo against a plain Keras script.

Run: .venv/bin/python benchmarks/bench_overhead.py [--repeats 3]

It generates the README's demo script (fine-tune MobileNetV3Small at 32 px)
and runs it as the README does, on examples/data/digits_5to9 from
examples/digits_base/mobilenetv3small_32px.weights.h5, 10 head epochs and 2
fine-tuning epochs, `--no-augment`. Against it runs a plain Keras script
written the way the keras-io transfer-learning guide writes one
(`image_dataset_from_directory`, the same model, the same epochs, `fit()`,
`model.save("model.keras")`). Each is one whole process (Python start,
imports, data, training, the run's end), timed from outside, `--repeats`
times by turns; the minimum of each is reported, in wall seconds and in CPU
seconds of all its threads (which vary less on a machine that others share),
and their ratio (goal: at most 1.3 wall).

The demo runs under a small wrapper that times the runtime's functions of a
run's end (`Run.finish`, `choose_model`, `write_report`, ...) and those they
call (the model check, weight loading, predictions, pictures); their seconds
(the minimum over the repeats, wall and CPU) are printed under the totals.
The wrapper's cost is two clock reads per call.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "examples" / "data" / "digits_5to9"
WEIGHTS = REPO / "examples" / "digits_base" / "mobilenetv3small_32px.weights.h5"
DEMO_OPTIONS = [
    "--data-dir",
    str(DATA / "train"),
    "--val-dir",
    str(DATA / "val"),
    "--weights",
    str(WEIGHTS),
    "--epochs",
    "10",
    "--learning-rate",
    "0.01",
    "--batch-size",
    "10",
    "--fine-tune-epochs",
    "2",
    "--no-augment",
]

#: The runtime's functions timed in the demo: (module, qualified name). The
#: first group is the run's end, called by the script's main(); the second,
#: what those call.
RUN_END = [
    ("kerastl.runtime.run", "Run.fit"),
    ("kerastl.runtime.run", "Run.finish"),
    ("kerastl.runtime.ship", "choose_model"),
    ("kerastl.runtime.report", "write_report"),
]
INSIDE = [
    ("keras", "Model.fit"),
    ("kerastl.runtime.checkpoints", "Checkpoints.save"),
    ("kerastl.runtime", "load_training_data"),
    ("kerastl.runtime.models", "save_model_checked"),
    ("kerastl.runtime.models", "save_model_atomic"),
    ("kerastl.runtime.weights_files", "load_weights_into"),
    ("kerastl.runtime.checkpoints", "Checkpoints.save_best"),
    ("kerastl.runtime.explain", "grad_cam"),
    ("kerastl.runtime.predictions", "predictions_of"),
    ("kerastl.runtime.predictions", "with_mirror_images"),
    ("kerastl.runtime.report_plots", "plot_confusion_matrix"),
    ("kerastl.runtime.report_plots", "plot_training_curves"),
    ("kerastl.runtime.report_plots", "plot_top_losses"),
    ("kerastl.runtime.explain_plots", "plot_explanations"),
]
#: Timed in the plain script, to set against the demo's.
PLAIN_PARTS = [("keras", "Model.fit"), ("keras", "Model.save")]

#: Runs a script with the functions above timed; writes their seconds as JSON:
#: wall and CPU (all threads) seconds by name.
WRAPPER = """
import atexit, functools, importlib, json, runpy, sys, time

seconds = {}
timed = json.loads(sys.argv[1])
output = sys.argv[2]
sys.argv = sys.argv[3:]


def timer(name, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            total = seconds.setdefault(name, [0.0, 0.0])
            total[0] += time.perf_counter() - wall
            total[1] += time.process_time() - cpu
    return wrapper


for module_name, name in timed:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        continue
    owner_name, _, attribute = name.rpartition(".")
    owner = getattr(module, owner_name) if owner_name else module
    original = getattr(owner, attribute, None)
    if original is None:
        continue  # not in this version of the runtime
    wrapped = timer(name, original)
    setattr(owner, attribute, wrapped)
    if not owner_name:  # also where other modules imported it by name
        for other in list(sys.modules.values()):
            if getattr(other, "__name__", "").startswith("kerastl") and (
                getattr(other, attribute, None) is original
            ):
                setattr(other, attribute, wrapped)

atexit.register(lambda: open(output, "w").write(json.dumps(seconds)))
runpy.run_path(sys.argv[0], run_name="__main__")
"""

#: The same training as the demo, as the keras-io transfer-learning guide writes it.
PLAIN_SCRIPT = """
import sys

import keras
import tensorflow as tf

train_dir, val_dir, weights, output = sys.argv[1:5]
keras.utils.set_random_seed(1337)
train_ds = keras.utils.image_dataset_from_directory(
    train_dir, image_size=(32, 32), batch_size=10, label_mode="categorical", seed=1337
)
validation_ds = keras.utils.image_dataset_from_directory(
    val_dir, image_size=(32, 32), batch_size=10, label_mode="categorical"
)
train_ds = train_ds.cache().prefetch(tf.data.AUTOTUNE)
validation_ds = validation_ds.cache().prefetch(tf.data.AUTOTUNE)

base_model = keras.applications.MobileNetV3Small(
    include_top=False, weights=None, input_shape=(32, 32, 3)
)
base_model.load_weights(weights)
base_model.trainable = False
inputs = keras.Input(shape=(32, 32, 3))
x = base_model(inputs, training=False)
x = keras.layers.GlobalAveragePooling2D()(x)
x = keras.layers.Dropout(0.2)(x)
outputs = keras.layers.Dense(5, activation="softmax")(x)
model = keras.Model(inputs, outputs)

model.compile(
    optimizer=keras.optimizers.Adam(0.01),
    loss=keras.losses.CategoricalCrossentropy(),
    metrics=["accuracy"],
)
model.fit(train_ds, epochs=10, validation_data=validation_ds, verbose=2)

# Fine-tune the top 3 blocks, BatchNormalization frozen, at a low rate.
top = ("expanded_conv_8_", "expanded_conv_9_", "expanded_conv_10_")
base_model.trainable = True
for layer in base_model.layers:
    layer.trainable = layer.name.startswith(top) and not isinstance(
        layer, keras.layers.BatchNormalization
    )
model.compile(
    optimizer=keras.optimizers.Adam(1e-5),
    loss=keras.losses.CategoricalCrossentropy(),
    metrics=["accuracy"],
)
model.fit(train_ds, epochs=12, initial_epoch=10, validation_data=validation_ds, verbose=2)
model.save(output + "/model.keras")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    whole: dict[str, list[tuple[float, float]]] = {"demo": [], "plain": []}
    parts: dict[str, dict[str, list[list[float]]]] = {"demo": {}, "plain": {}}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        script = root / "train.py"
        subprocess.run(
            [sys.executable, "-m", "kerastl", "new", "--mode", "fine-tune"]
            + ["--backbone", "MobileNetV3Small", "--image-size", "32"]
            + ["-o", str(script), "--force"],
            check=True,
            capture_output=True,
            env=environment,
        )
        (root / "plain.py").write_text(PLAIN_SCRIPT)
        (root / "timed.py").write_text(WRAPPER)
        demo = [str(script), *DEMO_OPTIONS, "--output-dir"]
        plain = [str(root / "plain.py"), str(DATA / "train"), str(DATA / "val")]
        plain += [str(WEIGHTS)]
        for repeat in range(args.repeats):
            for name, command, timed in (
                ("demo", demo, RUN_END + INSIDE),
                ("plain", plain, PLAIN_PARTS),
            ):
                output = root / f"{name}-{repeat}"
                output.mkdir()
                seconds_file = root / f"parts-{name}-{repeat}.json"
                whole[name].append(
                    timed_process(
                        [sys.executable, str(root / "timed.py"), json.dumps(timed)]
                        + [str(seconds_file), *command, str(output)],
                        environment,
                    )
                )
                for part, seconds in json.loads(seconds_file.read_text()).items():
                    parts[name].setdefault(part, []).append(seconds)
            print(
                f"run {repeat + 1}: demo {whole['demo'][-1][0]:.2f} s, "
                f"plain {whole['plain'][-1][0]:.2f} s (wall)",
                flush=True,
            )
    report(whole, parts, args.repeats)


def report(whole: dict, parts: dict, repeats: int) -> None:
    """Prints the minimum wall and CPU seconds of each process and part."""
    print(f"\nwhole process, the minimum of {repeats} (wall, CPU of all threads):")
    best = {name: [min(times) for times in zip(*runs)] for name, runs in whole.items()}
    for name, (wall, cpu) in best.items():
        print(f"  {name:<6} {wall:7.2f} s  {cpu:7.2f} s")
    wall_ratio = best["demo"][0] / best["plain"][0]
    cpu_ratio = best["demo"][1] / best["plain"][1]
    print(f"  demo / plain = {wall_ratio:.2f} wall, {cpu_ratio:.2f} CPU  (goal <= 1.3)")
    for name, timed in (("demo", RUN_END + INSIDE), ("plain", PLAIN_PARTS)):
        print(f"the {name}'s parts (seconds, the minimum of the repeats: wall, CPU):")
        for _, part in timed:
            if part in parts[name]:
                wall, cpu = (min(times) for times in zip(*parts[name][part]))
                print(f"  {part:<28} {wall:7.2f}  {cpu:7.2f}")


def timed_process(command: list[str], environment: dict) -> tuple[float, float]:
    """The wall and CPU seconds of `command`, which must succeed; its output is
    kept back."""
    cpu = _children_cpu()
    started = time.perf_counter()
    result = subprocess.run(
        command, check=False, capture_output=True, text=True, env=environment
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"{command[3]} failed:\n{result.stdout}\n{result.stderr}")
    return seconds, _children_cpu() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
