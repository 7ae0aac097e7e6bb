"""Photos as they come: images decoded and turned upright by their EXIF orientation.

A phone stores a photo as its sensor saw it and records in the JPEG's EXIF
data how to turn it (the Orientation tag, 1 to 8); TensorFlow's decoders ignore
the tag, so a portrait photo would train and predict sideways. `load_image` is
the one way training, evaluation, the feature cache, the report's pictures and
`kerastl predict` read an image file.
"""

import struct

import numpy as np
import tensorflow as tf

_JPEG_START = b"\xff\xd8"
_EXIF_HEADER = b"Exif\x00\x00"
_ORIENTATION_TAG = 0x0112


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1 to 8) of a JPEG file's bytes; 1 when it has none.

    Reads the segments before the image data, to the APP1 segment that holds
    EXIF, and in it the first directory (IFD0) of its TIFF structure.
    """
    if not data.startswith(_JPEG_START):
        return 1
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:  # a fill byte
            position += 1
            continue
        if marker in (0xD9, 0xDA):  # the end, or the image data: no EXIF before
            return 1
        (length,) = struct.unpack_from(">H", data, position + 2)
        if marker == 0xE1 and data[position + 4 : position + 10] == _EXIF_HEADER:
            return _tiff_orientation(data[position + 10 : position + 2 + length])
        position += 2 + length
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    """The Orientation entry of a TIFF structure's first directory, else 1."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 1
    (directory,) = struct.unpack_from(order + "I", tiff, 4)
    if directory + 2 > len(tiff):
        return 1
    (entries,) = struct.unpack_from(order + "H", tiff, directory)
    for entry in range(entries):
        at = directory + 2 + 12 * entry
        if at + 12 > len(tiff):
            return 1
        tag, kind = struct.unpack_from(order + "HH", tiff, at)
        if tag == _ORIENTATION_TAG and kind == 3:  # a SHORT
            (value,) = struct.unpack_from(order + "H", tiff, at + 8)
            return value if 1 <= value <= 8 else 1
    return 1


# Each orientation as (transpose, flip up-down, flip left-right), in that order.
_TURNS = (
    (0, 0, 0),  # 1: as stored
    (0, 0, 1),  # 2: mirrored
    (0, 1, 1),  # 3: turned 180 degrees
    (0, 1, 0),  # 4: upside down
    (1, 0, 0),  # 5: transposed
    (1, 0, 1),  # 6: turned 90 degrees clockwise
    (1, 1, 1),  # 7: transversed
    (1, 1, 0),  # 8: turned 90 degrees counter-clockwise
)


def turn_upright(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """`image` (height, width, channels) turned as EXIF `orientation` says.

    Every orientation is a transpose, then flips (`_TURNS`): computed
    without branches, so the graph of a dataset's map traces in no time.
    """
    index = tf.clip_by_value(tf.cast(orientation, tf.int32), 1, 8) - 1
    turn = tf.gather(tf.constant(_TURNS) > 0, index)
    image = tf.transpose(image, tf.where(turn[0], [1, 0, 2], [0, 1, 2]))
    return tf.reverse(image, tf.boolean_mask(tf.constant([0, 1]), turn[1:]))


def _orientation_of(contents: tf.Tensor) -> tf.Tensor:
    """`exif_orientation` in a graph, read in Python (only JPEGs have one)."""

    def read(data: np.ndarray | bytes) -> np.int32:
        # Eager calls pass a 0-d array of the bytes; graphs (tf.data) the bytes.
        return np.int32(
            exif_orientation(data.item() if hasattr(data, "item") else data)
        )

    orientation = tf.cond(
        tf.strings.substr(contents, 0, 2) == _JPEG_START,
        lambda: tf.numpy_function(read, [contents], tf.int32, stateful=False),
        lambda: tf.constant(1, tf.int32),
    )
    return tf.reshape(orientation, [])


def decode_upright(contents: tf.Tensor) -> tf.Tensor:
    """An image file's bytes as RGB pixels (uint8), upright."""
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    return turn_upright(image, _orientation_of(contents))


@tf.autograph.experimental.do_not_convert
def load_image(path: tf.Tensor, image_size: int) -> tf.Tensor:
    """The image file `path` as raw RGB pixels in [0, 255] (float32), upright,
    resized to `image_size` x `image_size` (bilinear, as Keras resizes)."""
    contents = tf.io.read_file(path)
    image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    # Resized first, then turned: the same pixels at a square size, and the
    # turn moves float32 (TensorFlow's graph optimizer would move a cast after
    # the transpose, and oneDNN transposes uint8 only with AVX-512, logging an
    # error line on every other CPU).
    image = tf.image.resize(image, (image_size, image_size))
    image = turn_upright(image, _orientation_of(contents))
    image.set_shape((image_size, image_size, 3))
    return image
