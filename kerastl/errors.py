"""The errors of the generator; the CLI prints each as one line."""


class KerastlError(Exception):
    """A problem with the user's request; the message is one clear line."""
