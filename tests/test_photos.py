"""Photos as they come: EXIF orientation, WebP, and files that are not images."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from kerastl.runtime import scan_image_folder
from kerastl.runtime.errors import DataError
from kerastl.runtime.image_lists import LabelledImages
from kerastl.runtime.image_sets import image_dataset
from kerastl.runtime.images import check_images
from kerastl.runtime.input_pipeline import _augment
from kerastl.runtime.predict import image_batches
from kerastl.runtime.upright import decode_upright, exif_orientation
from tests.digits import write_digits

# How a camera stores an upright picture for each EXIF orientation: the
# inverse of what the tag asks a viewer to do (Pillow's `exif_transpose`).
STORED_AS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def upright_picture() -> Image.Image:
    """A 48x32 picture no turn or mirror leaves alike: four colored blocks."""
    pixels = np.zeros((32, 48, 3), np.uint8)
    pixels[:16, :16] = (255, 0, 0)
    pixels[:16, 16:] = (0, 255, 0)
    pixels[16:, :32] = (0, 0, 255)
    pixels[16:, 32:] = (255, 255, 0)
    return Image.fromarray(pixels)


def write_photo(path: Path, orientation: int) -> Path:
    """The upright picture as a phone would save it with `orientation`."""
    picture = upright_picture()
    if orientation in STORED_AS:
        picture = picture.transpose(STORED_AS[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    picture.save(path, "JPEG", quality=95, exif=exif.tobytes())
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_photo_with_an_exif_orientation_is_decoded_upright(
    tmp_path: Path, orientation: int
) -> None:
    photo = write_photo(tmp_path / "photo.jpg", orientation)
    assert exif_orientation(photo.read_bytes()) == orientation
    decoded = decode_upright(tf.io.read_file(str(photo))).numpy()
    upright = np.asarray(upright_picture())
    assert decoded.shape == upright.shape  # 32 high, 48 wide, whatever was stored
    assert (
        np.abs(decoded.astype(int) - upright).mean() < 8
    )  # JPEG's losses at the blocks' edges
    as_pillow_turns_it = np.asarray(ImageOps.exif_transpose(Image.open(photo)))
    assert np.abs(decoded.astype(int) - as_pillow_turns_it).mean() < 1


def test_images_without_an_orientation_are_left_as_they_are(tmp_path: Path) -> None:
    upright_picture().save(tmp_path / "plain.jpg", quality=95)
    upright_picture().save(tmp_path / "plain.png")
    for name in ("plain.jpg", "plain.png"):
        assert exif_orientation((tmp_path / name).read_bytes()) == 1
    assert exif_orientation(b"\xff\xd8\xff\xe1\x00\x08Exif\x00\x00") == 1  # cut short


def test_prediction_and_training_read_a_photo_upright(tmp_path: Path) -> None:
    photo = str(write_photo(tmp_path / "photo.jpg", 6))
    expected = tf.image.resize(np.asarray(upright_picture()), (16, 16)).numpy()
    predicted = next(iter(image_batches([photo], 16, 1)))[0].numpy()
    images = LabelledImages([photo], np.array([0], np.int32), str(tmp_path))
    trained = next(iter(image_dataset(images, 16)))[0].numpy()
    for pixels in (predicted, trained):
        assert np.abs(pixels - expected).mean() < 8


def test_webp_images_are_counted_and_decoded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_digits(tmp_path / "data", per_class=2, classes=2)
    picture = upright_picture()
    picture.save(folder / "1" / "photo.webp", lossless=True)
    (folder / "1" / "notes.txt").write_text("not an image")
    (folder / "0" / "raw.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    scan = scan_image_folder(folder)
    assert scan.counts == {"0": 2, "1": 3}
    assert capsys.readouterr().out == (
        f"Scan of the data folder {folder}: 5 images (4 .png, 1 .webp); skipped 2 "
        "files that are not images (.bmp, .gif, .jpeg, .jpg, .png, .webp): "
        "1 .heic, 1 .txt\n"
    )
    images = LabelledImages([str(folder / "1" / "photo.webp")], np.array([1]), "")
    decoded = next(iter(image_dataset(images, 32)))[0].numpy()
    expected = tf.image.resize(np.asarray(picture), (32, 32)).numpy()
    np.testing.assert_allclose(decoded, expected, atol=1e-3)  # lossless


def test_a_webp_cut_short_is_named(tmp_path: Path) -> None:
    path = tmp_path / "cut.webp"
    upright_picture().save(path, lossless=True)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match="cut.webp is not a readable image .*RIFF"):
        check_images([path])


def test_mixup_mixes_multi_hot_labels_as_they_are() -> None:
    images = tf.cast(tf.random.uniform((4, 8, 8, 3), 0, 255, seed=1), tf.uint8)
    labels = tf.constant([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], tf.float32)
    mixed_images, mixed = _augment(
        None,
        (keras.layers.MixUp(alpha=0.4),),
        images,
        labels,
        tf.constant([3, 1], tf.int64),
        num_classes=3,
    )
    mixed = mixed.numpy()
    assert mixed.shape == (4, 3) and mixed_images.shape == (4, 8, 8, 3)
    assert (mixed >= 0).all() and (mixed <= 1).all()
    # Each row is a blend of its own labels and another row's, not a softmax.
    originals = labels.numpy()
    blends = [
        share * originals[i] + (1 - share) * originals[j]
        for i in range(4)
        for j in range(4)
        for share in np.linspace(0, 1, 1001)
    ]
    for row in mixed:
        assert min(np.abs(blend - row).max() for blend in blends) < 1e-3
