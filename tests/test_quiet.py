"""What C++ libraries print to file descriptor 2 is hidden only where it must be."""

import os
import sys

import pytest

from kerastl.runtime import quiet


@pytest.fixture
def fresh_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """As before TensorFlow loads: no log level set, no tensorflow module."""
    monkeypatch.delenv(quiet.TF_LOG_LEVEL, raising=False)
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)


def test_a_quiet_start_hides_the_lines_unless_the_block_fails(
    fresh_start: None, capfd: pytest.CaptureFixture[str]
) -> None:
    with quiet.quiet_start():
        os.write(2, b"Could not find cuda drivers\n")
    assert capfd.readouterr().err == ""
    assert os.environ[quiet.TF_LOG_LEVEL] == "2"
    del os.environ[quiet.TF_LOG_LEVEL]
    with pytest.raises(ImportError), quiet.quiet_start():
        os.write(2, b"libcudart.so: cannot open shared object file\n")
        raise ImportError("the block fails")
    assert capfd.readouterr().err == "libcudart.so: cannot open shared object file\n"


def test_ctrl_c_in_a_quiet_start_shows_nothing(
    fresh_start: None, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(KeyboardInterrupt), quiet.quiet_start():
        os.write(2, b"half a start-up line")
        raise KeyboardInterrupt
    assert capfd.readouterr().err == ""


def test_stderr_without_keeps_every_other_line(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(KeyError), quiet.stderr_without("delegate"):
        os.write(2, b"an error\nINFO: Created a delegate\nanother\n")
        raise KeyError("the block fails")
    assert capfd.readouterr().err == "an error\nanother\n"


def test_stderr_without_drops_everything_for_an_error_that_says_it_in_a_line(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ValueError), quiet.stderr_without(dropped_on=(ValueError,)):
        os.write(2, b"pages of a converter's dump\n")
        raise ValueError("one line")
    assert capfd.readouterr().err == ""
    with pytest.raises(KeyError), quiet.stderr_without(dropped_on=(ValueError,)):
        os.write(2, b"what another error needs\n")
        raise KeyError("another error")
    assert capfd.readouterr().err == "what another error needs\n"
