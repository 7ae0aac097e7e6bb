"""Image files: which are images, and whether TensorFlow can decode them.

The check walks each file's structure without decoding pixels, so a folder of
thousands of images is checked in a fraction of a second and a file that is cut
short or is not an image is named before training, not mid-epoch.
"""

import mmap
import os
import re
import struct
import zlib
from collections.abc import Sequence

from . import files
from .errors import DataError

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".webp")

_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
_WEBP = (b"RIFF", b"WEBP")  # bytes 0-3 and 8-11 of a WebP file


def image_problem(path: str | os.PathLike) -> str | None:
    """Why TensorFlow's decoder would reject the image file `path`, or None.

    Walks the file's structure without decoding pixels: PNG chunks to IEND, with
    the checksums of the chunks libpng checks; JPEG segments to the end marker
    (only the headers and the tail are read when it ends with one); GIF blocks;
    the BMP size TensorFlow expects. This catches files cut short by an
    interrupted download or copy, which TensorFlow rejects mid-training.
    """
    with files.mapped(path) as contents:
        head = bytes(contents[:8])
        if isinstance(contents, mmap.mmap) and head.startswith(_SIGNATURES[1]):
            return _jpeg_problem(contents)  # a large JPEG: only the pages read
        return _structure_problem(head, bytes(contents))


def _structure_problem(head: bytes, data: bytes) -> str | None:
    if not data:
        return "the file is empty"
    if head.startswith(_SIGNATURES[0]):
        return _png_problem(data)
    if head.startswith(_SIGNATURES[1]):
        return _jpeg_problem(data)
    if head.startswith(_SIGNATURES[2:4]):
        return _gif_problem(data)
    if head.startswith(_SIGNATURES[4]):
        return _bmp_problem(data)
    if head.startswith(_WEBP[0]) and data[8:12] == _WEBP[1]:
        return _webp_problem(data)
    return "it is not a BMP, GIF, JPEG, PNG or WebP file"


_CUT_SHORT = "the file is cut short"

# A JPEG marker after entropy-coded data: 0xFF, then not a stuffed 0x00, a
# restart marker (0xD0-0xD7) or a fill byte.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _png_problem(data: bytes) -> str | None:
    position = 8
    while position + 12 <= len(data):
        (length,) = struct.unpack_from(">I", data, position)
        kind = data[position + 4 : position + 8]
        end = position + 12 + length
        if end > len(data):
            return f"{_CUT_SHORT}, in a PNG {kind.decode('latin-1')} chunk"
        if kind[:1].isupper():  # a critical chunk: libpng refuses a bad checksum
            (checksum,) = struct.unpack_from(">I", data, end - 4)
            if zlib.crc32(data[position + 4 : end - 4]) != checksum:
                return f"its PNG {kind.decode('latin-1')} chunk is damaged"
        if kind == b"IEND":
            return None
        position = end
    return f"{_CUT_SHORT}: the PNG has no IEND chunk"


def _jpeg_problem(data: bytes | mmap.mmap) -> str | None:
    position = 2
    while True:
        if position + 2 > len(data):
            return f"{_CUT_SHORT}: the JPEG has no end marker"
        if data[position] != 0xFF:  # stray bytes, which libjpeg skips
            found = _JPEG_MARKER.search(data, position)
            if found is None:
                return f"{_CUT_SHORT}: the JPEG has no end marker"
            position = found.start()
        marker = data[position + 1]
        if marker == 0xD9:
            return None
        if marker == 0xFF or 0xD0 <= marker <= 0xD8 or marker == 0x01:
            position += 1 if marker == 0xFF else 2
            continue
        if position + 4 > len(data):
            return f"{_CUT_SHORT}, in a JPEG segment"
        (length,) = struct.unpack_from(">H", data, position + 2)
        position += 2 + length
        if position > len(data):
            return f"{_CUT_SHORT}, in a JPEG segment"
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            if data[-2:] == b"\xff\xd9":
                return None  # no marker inside the data looks like the end marker
            found = _JPEG_MARKER.search(data, position)
            if found is None:
                return f"{_CUT_SHORT}: the JPEG has no end marker"
            position = found.start()


def _gif_problem(data: bytes) -> str | None:
    position = 13
    if len(data) < position:
        return _CUT_SHORT
    if data[10] & 0x80:  # global color table
        position += 3 << ((data[10] & 7) + 1)
    images = 0
    while position < len(data):
        block = data[position]
        if block == 0x3B:  # trailer
            return None
        if block == 0x21:  # extension: label, then sub-blocks
            position += 2
        elif block == 0x2C:  # image: descriptor, color table, LZW code size
            if position + 10 > len(data):
                return _CUT_SHORT
            flags = data[position + 9]
            position += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1
            images += 1
        else:
            return "its GIF data is damaged"
        while position < len(data) and data[position]:  # sub-blocks, to a 0 size
            position += 1 + data[position]
        if position >= len(data):
            return _CUT_SHORT
        position += 1
    return None if images else _CUT_SHORT  # giflib reads a GIF without a trailer


def _bmp_problem(data: bytes) -> str | None:
    if len(data) < 30:
        return _CUT_SHORT
    offset, _, width, height, _, bits = struct.unpack_from("<IIiiHH", data, 10)
    if bits not in (8, 24, 32):
        return f"it is a {bits}-bit BMP; TensorFlow reads 8, 24 and 32 bits"
    expected = offset + (bits * abs(width) + 31) // 32 * 4 * abs(height)
    if len(data) != expected:
        return f"its BMP size is {len(data)} bytes, not the {expected} its header gives"
    return None


def _webp_problem(data: bytes) -> str | None:
    (size,) = struct.unpack_from("<I", data, 4)  # the RIFF chunk, after 8 bytes
    if len(data) < 8 + size or size < 12:
        return f"{_CUT_SHORT}: the WebP's RIFF chunk holds {size} bytes"
    return None


def list_images(folder: str | os.PathLike) -> list[str]:
    """Image files below `folder` (any depth), by extension, sorted."""
    return [path for path in all_files(folder) if is_image_name(path)]


def is_image_name(path: str) -> bool:
    """Whether the file's extension is that of an image format TensorFlow reads."""
    return path.lower().endswith(IMAGE_EXTENSIONS)


def all_files(folder: str | os.PathLike) -> list[str]:
    """Every file below `folder`, sorted; local paths normalized (`a/./b` is `a/b`)."""
    found = files.files_below(folder)
    return found if files.is_remote(folder) else [os.path.normpath(p) for p in found]


# Unreadable files named in full by the one-line error, at most; then a count.
NAMED_UNREADABLE = 5


def check_images(paths: Sequence[str | os.PathLike]) -> None:
    """Raises DataError naming each of `paths` that TensorFlow could not decode.

    See `image_problem`: it reads each file's structure, not its pixels. The
    one line names the first `NAMED_UNREADABLE` files and counts the rest, so
    that a single run finds them all.
    """
    problems = [(path, image_problem(path)) for path in paths]
    unreadable = [(path, problem) for path, problem in problems if problem]
    if len(unreadable) == 1:
        path, problem = unreadable[0]
        raise DataError(
            f"{path} is not a readable image ({problem}); remove or replace it"
        )
    if unreadable:
        named = "; ".join(
            f"{path} ({problem})" for path, problem in unreadable[:NAMED_UNREADABLE]
        )
        more = len(unreadable) - NAMED_UNREADABLE
        rest = f"; and {more} more" if more > 0 else ""
        raise DataError(
            f"{len(unreadable)} files are not readable images: {named}{rest}; "
            "remove or replace them"
        )
