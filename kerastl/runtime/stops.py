"""Stopping a run cleanly on SIGTERM (preemption) or Ctrl-C (SIGINT).

Spot VMs, Kubernetes and Vertex AI stop a job with SIGTERM and a grace period
of seconds. While a run trains, either signal asks it to stop after the batch
in progress: it saves a checkpoint inside the epoch, says so in one line and
exits with 128 + the signal's number (143 for SIGTERM, 130 for Ctrl-C), the
shell's convention, which the Kubeflow training operator's
`restartPolicy: ExitCode` retries (it takes 1-127 for permanent failures).
A second signal acts at once, as it would without the run; the files written
through a temporary name and a rename keep the previous checkpoint valid.
"""

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
    """Whether a stop was asked for, and by which signal."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def __bool__(self) -> bool:
        return self.signal is not None

    @property
    def name(self) -> str:
        """`"SIGTERM"` or `"SIGINT (Ctrl-C)"`."""
        if self.signal == signal.SIGINT:
            return "SIGINT (Ctrl-C)"
        return signal.Signals(self.signal).name if self.signal else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal's number."""
        return 128 + int(self.signal or 0)


@contextlib.contextmanager
def stop_requests(enabled: bool = True) -> Iterator[StopRequest]:
    """Within the block, SIGTERM and SIGINT only set the request it yields.

    Outside the main thread (where Python takes no signal handler), or when not
    `enabled`, the signals keep their usual effect; an ignored one stays ignored.
    """
    request = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return
    # A signal the process was started to ignore (nohup, a background job) stays so.
    previous = {
        number: signal.getsignal(number)
        for number in SIGNALS
        if signal.getsignal(number) is not signal.SIG_IGN
    }

    def ask(number: int, frame) -> None:
        request.signal = number
        for other, handler in previous.items():  # a second signal acts at once
            signal.signal(other, handler)

    for number in previous:
        signal.signal(number, ask)
    try:
        yield request
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def stopped_by_ctrl_c() -> int:
    """Says in one line that Ctrl-C stopped the script; returns its status, 130.

    For Ctrl-C outside training (loading data, writing the report): training
    saves and stops by itself.
    """
    print("\nStopped by SIGINT (Ctrl-C).", file=sys.stderr)
    return 128 + signal.SIGINT
