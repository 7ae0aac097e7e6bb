"""--strategy: the same generated script on several devices and several workers.

The mirrored test splits this machine's CPU into two logical devices before the
script runs (a small launcher, as a user would configure devices); the
multi-worker tests start two worker processes on 127.0.0.1 (slow: each test
runs fine-tuning in two processes).
"""

import csv
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kerastl.runtime.distribute import (
    DistributionError,
    check_tf_config,
    distribution_strategy,
    is_chief,
    is_default,
)
from tests.conftest import REPO, run_script, script_env

HEAD_EPOCHS = 2
TUNE_EPOCHS = 1
EXPECTED = [(1, "head"), (2, "head"), (3, "unfreeze-1")]
TIMEOUT = 300  # seconds any one process may take; the tests kill what is left

# Runs a script's main() with its arguments after splitting the CPU in two.
TWO_CPUS = """
import runpy, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("distribute")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "kerastl",
            "new",
            "--backbone",
            "MobileNetV3Small",
            "--image-size",
            "32",
            "--unfreeze",
            "1",
            "-o",
            "train.py",
        ],
        cwd=folder,
        check=True,
        capture_output=True,
        env=script_env(PYTHONPATH=str(REPO)),
    )
    return folder / "train.py"


def arguments(digits_dir: Path, output: Path | str, *extra: str) -> list[str]:
    return [
        "--data-dir",
        str(digits_dir),
        "--weights",
        "none",
        "--epochs",
        str(HEAD_EPOCHS),
        "--fine-tune-epochs",
        str(TUNE_EPOCHS),
        "--output-dir",
        str(output),
        *extra,
    ]


def history(output: Path) -> list[dict[str, str]]:
    path = output / "history.csv"
    if not path.exists():
        return []
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def epochs(output: Path) -> list[tuple[int, str]]:
    return [(int(row["epoch"]), row["phase"]) for row in history(output)]


def checkpoint_epoch(output: Path) -> int:
    path = output / "resume" / "state.json"
    try:
        checkpoint = json.loads(path.read_text())["checkpoint"]
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    return checkpoint["epoch"] if checkpoint else 0


def test_tf_config_is_checked() -> None:
    with pytest.raises(DistributionError, match="TF_CONFIG, which is not set"):
        check_tf_config(None)
    with pytest.raises(DistributionError, match="not valid JSON"):
        check_tf_config("{cluster")
    with pytest.raises(DistributionError, match="needs a 'cluster' and a 'task'"):
        check_tf_config('{"cluster": {"worker": ["localhost:1"]}}')
    with pytest.raises(DistributionError, match="is not in its cluster"):
        check_tf_config(
            '{"cluster": {"worker": ["localhost:1"]}, '
            '"task": {"type": "worker", "index": 1}}'
        )
    config = check_tf_config(
        '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 0}}'
    )
    assert config["task"] == {"type": "worker", "index": 0}


def test_one_device_without_several_gpus(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("auto", "none"):
        strategy = distribution_strategy(name, batch_size=8)
        assert is_default(strategy) and is_chief(strategy)
        assert strategy.num_replicas_in_sync == 1
    assert (
        capsys.readouterr().out.splitlines()
        == ["Distribution: none, one device; batch size 8."] * 2
    )
    with pytest.raises(DistributionError, match="unknown strategy 'ring'"):
        distribution_strategy("ring", batch_size=8)


@pytest.mark.slow
def test_multi_worker_without_tf_config_is_one_line(
    script: Path, digits_dir: Path, tmp_path: Path
) -> None:
    env = script_env()
    env.pop("TF_CONFIG", None)
    result = run_script(
        script,
        *arguments(digits_dir, tmp_path / "run", "--strategy", "multi-worker"),
        env=env,
    )
    assert result.returncode != 0
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("error: --strategy multi-worker reads the cluster from TF_CONFIG")
    )


def two_cpus(script: Path, args: list[str]) -> list[str]:
    """The command that runs `script` mirrored on two logical CPU devices."""
    return [sys.executable, "-c", TWO_CPUS, str(script), *args]


def killed_and_resumed(script: Path, args: list[str], output: Path) -> str:
    """Runs the mirrored script, kills it after its first saved epoch, runs it
    again to the end, and returns the output of that second run."""
    process = subprocess.Popen(
        two_cpus(script, args),
        cwd=script.parent,
        env=script_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while checkpoint_epoch(output) < 1:
            assert process.poll() is None, "the run ended before the kill"
            assert time.monotonic() < deadline, "no epoch was saved in time"
            time.sleep(0.05)
        process.send_signal(signal.SIGSTOP)
        process.kill()
    finally:
        process.kill()
        process.wait()
    saved = checkpoint_epoch(output)
    assert 1 <= saved < len(EXPECTED) and not (output / "model.keras").exists()
    resumed = subprocess.run(
        two_cpus(script, args),
        capture_output=True,
        text=True,
        env=script_env(),
        timeout=TIMEOUT,
        cwd=script.parent,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resumed after epoch {saved}" in resumed.stdout
    return resumed.stdout


@pytest.mark.slow
def test_mirrored_on_two_devices_killed_and_resumed_trains_like_one(
    script: Path, digits_dir: Path, tmp_path: Path
) -> None:
    single, mirrored = tmp_path / "single", tmp_path / "mirrored"
    # The same global batch: 8 images on one device, 4 on each of two.
    one = run_script(
        script,
        *arguments(digits_dir, single, "--strategy", "none", "--batch-size", "8"),
    )
    assert one.returncode == 0, one.stderr[-3000:]
    assert "Distribution: none, one device; batch size 8." in one.stdout
    two = arguments(digits_dir, mirrored, "--strategy", "mirrored", "--batch-size", "4")
    stdout = killed_and_resumed(script, two, mirrored)
    assert (
        "Distribution: MirroredStrategy, 2 replicas; batch size 4 per replica, "
        "8 in all." in stdout
    )
    assert epochs(single) == epochs(mirrored) == EXPECTED
    # The same steps of the same images, killed or not: losses agree (a loss or
    # gradient summed instead of averaged over the replicas would double them).
    for row_one, row_two in zip(history(single), history(mirrored), strict=True):
        for key in ("loss", "val_loss"):
            assert float(row_two[key]) == pytest.approx(float(row_one[key]), rel=0.01)
    metrics = [
        json.loads((folder / "metrics.json").read_text())
        for folder in (single, mirrored)
    ]
    # The report predicts each validation image once (not once per replica).
    assert metrics[0]["validation"]["examples"] == 24
    assert metrics[1]["validation"]["examples"] == 24
    # Validated on two replicas during training, evaluated on one at the end: the same.
    val_losses = [float(row["val_loss"]) for row in history(mirrored)]
    shipped = min(val_losses) if metrics[1]["model"] == "best.keras" else val_losses[-1]
    assert metrics[1]["validation"]["loss"] == pytest.approx(shipped, rel=1e-4)
    # The mirrored model reloads outside the strategy and predicts every class.
    import keras
    import numpy as np

    model = keras.saving.load_model(mirrored / "model.keras")
    probabilities = model.predict(np.zeros((3, 32, 32, 3), "float32"), verbose=0)
    assert probabilities.shape == (3, 10)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def start_workers(
    script: Path,
    args: list[str],
    temp: Path,
    logs: Path,
    worker_args: tuple[list[str], list[str]] = ([], []),
) -> list[subprocess.Popen]:
    """Two workers of one cluster on 127.0.0.1; each with its own TMPDIR and log."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    processes = []
    for index in range(2):
        (temp / str(index)).mkdir(parents=True, exist_ok=True)
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = script_env(TF_CONFIG=json.dumps(config), TMPDIR=str(temp / str(index)))
        with open(logs / f"worker-{index}.log", "a") as log:
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(script),
                        *args,
                        *worker_args[index],
                        "--strategy",
                        "multi-worker",
                    ],
                    cwd=script.parent,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return processes


def wait_for(
    processes: list[subprocess.Popen], logs: Path, codes: tuple[int, int] = (0, 0)
) -> None:
    deadline = time.monotonic() + TIMEOUT
    for process in processes:
        try:
            process.wait(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pytest.fail(f"the workers did not finish in {TIMEOUT} s")
    ended = tuple(process.returncode for process in processes)
    if ended != codes:
        text = "\n".join(
            path.read_text()[-2000:] for path in sorted(logs.glob("worker-*.log"))
        )
        pytest.fail(f"the workers ended with {ended}, not {codes}:\n{text}")


def end(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.mark.slow
def test_multi_worker_run_resumes_after_a_kill(
    script: Path, digits_dir: Path, tmp_path: Path
) -> None:
    output, temp, logs = tmp_path / "run", tmp_path / "tmp", tmp_path / "logs"
    logs.mkdir()
    # A URL, as gs:// would be, that both workers (two processes) can reach:
    # every path of the run goes through tf.io.gfile, none through pathlib.
    args = arguments(digits_dir, f"file://{output}", "--batch-size", "4")
    processes = start_workers(script, args, temp, logs)
    killed = processes[1].pid
    try:
        deadline = time.monotonic() + TIMEOUT
        while checkpoint_epoch(output) < 1:
            assert all(
                process.poll() is None for process in processes
            ), "a worker ended before the kill"
            assert time.monotonic() < deadline, "no epoch was saved in time"
            time.sleep(0.05)
        for process in processes:
            process.send_signal(signal.SIGSTOP)
            process.kill()
    finally:
        end(processes)
    saved = checkpoint_epoch(output)
    assert 1 <= saved < len(EXPECTED) and not (output / "model.keras").exists()
    processes = start_workers(script, args, temp, logs)
    try:
        wait_for(processes, logs)
    finally:
        end(processes)
    assert epochs(output) == EXPECTED
    chief_log = (logs / "worker-0.log").read_text()
    assert "Distribution: MultiWorkerMirroredStrategy on 2 workers" in chief_log
    assert f"resumed after epoch {saved}" in chief_log
    assert f"Wrote file://{output}/metrics.json" in chief_log
    # One model, written by the chief; the other worker's folders are gone.
    assert sorted(path.name for path in output.rglob("*.keras")) == [
        "best.keras",
        "model.keras",
    ]
    for name in ("metrics.json", "labels.json", "run.json"):
        assert (output / name).is_file()
    # Validated across the workers during training, evaluated by the chief alone
    # at the end: the same figure.
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["validation"]["examples"] == 24
    val_losses = [float(row["val_loss"]) for row in history(output)]
    shipped = min(val_losses) if metrics["model"] == "best.keras" else val_losses[-1]
    assert metrics["validation"]["loss"] == pytest.approx(shipped, rel=1e-4)
    # The killed worker's temporary folder stays; the restarted one's is deleted.
    left = sorted(path.name for path in temp.glob("*/kerastl-*"))
    assert left in ([], [f"kerastl-worker-1-{killed}"])


@pytest.mark.slow
def test_workers_that_read_different_runs_stop(
    script: Path, digits_dir: Path, tmp_path: Path
) -> None:
    """Workers that do not share the output folder would wait for each other forever."""
    temp, logs = tmp_path / "tmp", tmp_path / "logs"
    logs.mkdir()
    state = tmp_path / "chief" / "resume" / "state.json"
    state.parent.mkdir(parents=True)
    state.write_text('{"completed": [], "checkpoint": {"epoch": 1}}')
    args = arguments(digits_dir, tmp_path / "unused")
    outputs = (
        ["--output-dir", str(tmp_path / "chief")],
        ["--output-dir", str(tmp_path / "other")],
    )
    processes = start_workers(script, args, temp, logs, outputs)
    try:
        wait_for(processes, logs, codes=(1, 1))
    finally:
        end(processes)
    for index in range(2):
        last = (logs / f"worker-{index}.log").read_text().strip().splitlines()[-1]
        assert last.startswith("error: the workers found different saved runs in ")
