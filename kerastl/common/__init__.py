"""The runtime's helpers that need no TensorFlow, importable without it.

`kerastl.common.atomic` is the file `kerastl/runtime/common/atomic.py`, loaded
without running `kerastl/runtime/__init__.py` (which imports TensorFlow): this
package's path is that folder. Its modules are the runtime's, not copies, so
the generator and the scripts share one implementation of each.

Why not a plain package: the runtime is copied alone beside `--standalone`
scripts and imports only itself, relatively, so the shared files must live
inside it; and the runtime's `__init__` must load TensorFlow first, to quiet
its start-up. A process that imports both names (`kerastl predict`) loads each
file twice, as two modules: the generator uses `kerastl.common`, the runtime
`kerastl.runtime.common`, and each catches the errors of the one it calls.
"""

import os

__path__ = [
    os.path.join(os.path.dirname(os.path.dirname(__file__)), "runtime", "common")
]
