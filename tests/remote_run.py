"""Runs a generated script twice in one process, on TensorFlow's in-memory file system.

`ram://` lives as long as the process, so the data goes in, the script runs
(then again, as a rerun), and the outputs are listed, all here:

    python tests/remote_run.py DATA TEST SCRIPT RESULT.json [SCRIPT OPTIONS...]

The data folder is copied to `ram://data`, the test folder to `ram://test`,
and the weights of a MobileNetV3Small base at 32 pixels are saved as
`ram://weights/base.weights.h5`. RESULT.json gets each run's exit code, every
file below `ram://bucket` with its size, and the run's `run.json`.
"""

import json
import os
import runpy
import sys

import keras
import tensorflow as tf


def upload(local: str, remote: str) -> None:
    for root, _, names in os.walk(local):
        for name in names:
            source = os.path.join(root, name)
            target = f"{remote}/{os.path.relpath(source, local)}"
            tf.io.gfile.makedirs(target.rsplit("/", 1)[0])
            tf.io.gfile.copy(source, target, overwrite=True)


def main() -> None:
    data, test, script, result, *options = sys.argv[1:]
    upload(data, "ram://data")
    upload(test, "ram://test")
    tf.io.gfile.makedirs("ram://weights")
    keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(32, 32, 3)
    ).save_weights("ram://weights/base.weights.h5")
    codes = []
    for _ in range(2):  # the run, then a rerun that finds it finished
        keras.backend.clear_session()  # the same layer names as a new process
        sys.argv = [script, "--data-dir", "ram://data", "--test-dir", "ram://test"]
        sys.argv += options
        try:
            runpy.run_path(script, run_name="__main__")
            codes.append(0)
        except SystemExit as exit:
            codes.append(exit.code)
    listing = {
        f"{root}/{name}": tf.io.gfile.stat(f"{root}/{name}").length
        for root, _, names in tf.io.gfile.walk("ram://bucket")
        for name in names
    }
    card_path = os.environ["AIP_CHECKPOINT_DIR"] + "/run.json"
    card = json.loads(tf.io.gfile.GFile(card_path).read())
    with open(result, "w") as file:
        json.dump({"codes": codes, "files": listing, "run": card}, file, indent=1)


if __name__ == "__main__":
    main()
