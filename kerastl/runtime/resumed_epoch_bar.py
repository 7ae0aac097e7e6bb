"""`RestOfEpochBar`: Keras's progress bar for an epoch resumed from inside."""

import keras


class RestOfEpochBar(keras.callbacks.ProgbarLogger):
    """Keras's progress bar for the rest of an epoch that a stop interrupted.

    `fit()` over the batches left counts them from 1 under an `Epoch n/n`
    header; this bar leaves the header out (the run prints its own line) and
    counts on from the batches done, out of the whole epoch's.

    Args:
        done: The batches of the epoch trained before the stop.
    """

    def __init__(self, done: int) -> None:
        super().__init__()
        self.done = done

    def set_params(self, params):
        super().set_params(params)
        self.epochs = 1  # no "Epoch n/n" header
        if self.target is not None:
            self.target += self.done

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch + self.done, logs)
