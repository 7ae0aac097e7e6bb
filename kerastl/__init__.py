"""kerastl: generate readable Keras transfer-learning scripts for any keras.applications backbone."""

__version__ = "0.1.0"
