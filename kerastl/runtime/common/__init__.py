"""The runtime's helpers that need no TensorFlow, shared with the generator.

They live inside the runtime so that `kerastl new --standalone` copies them with
it and the runtime's modules import them relatively (`from .common import
atomic`). The generator imports the same files as `kerastl.common`, which
points its path here: importing `kerastl.runtime.common` would first run
`kerastl/runtime/__init__.py`, which loads TensorFlow. So the modules of this
folder import nothing but the standard library (matplotlib and numpy only
inside a function) and each other.
"""
