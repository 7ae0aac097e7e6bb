"""The runtime's helpers that need no TensorFlow, importable without it.

`kerastl.common.atomic` is the file `kerastl/runtime/common/atomic.py`, loaded
without running `kerastl/runtime/__init__.py` (which imports TensorFlow): this
package's path is that folder. Its modules are the runtime's, not copies, so
the generator and the scripts share one implementation of each.
"""

import os

__path__ = [
    os.path.join(os.path.dirname(os.path.dirname(__file__)), "runtime", "common")
]
