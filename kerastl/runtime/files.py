"""Writing a run's files: under a temporary name, then renamed, so that a kill
never leaves a half-written file under the real name.

Every file the runtime writes whole goes through `replacing`; `history.csv`
also gets rows appended (and synced), and Keras's exporters write the exported
artifacts. (The generator has its own `kerastl.files`: it may not import this
package, which loads TensorFlow.)
"""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

PARTIAL_PREFIX = "partial-"  # a file being written: `partial-best.keras`


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path`, renamed onto it when the block succeeds.

    The temporary name keeps `path`'s endings (`partial-model.keras`), which
    Keras and numpy read to choose a format. If the block fails, the partial
    file is deleted and `path` stays as it was. The folder is created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(PARTIAL_PREFIX + path.name)
    try:
        yield partial
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` to `path` atomically; returns the path."""
    with replacing(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return Path(path)
