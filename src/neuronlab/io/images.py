"""Turn a user's picture (any size, colour or grey, dark-on-light or light-on-dark) into an MNIST sample.

MNIST's own recipe: white digit on black, the digit's bounding box fitted into 20x20 keeping its aspect
ratio, then placed in 28x28 so that its centre of mass is at the centre. Fashion-MNIST items fill the
28x28 frame instead (box 28, centred by their box). The result is normalised like the training data.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from neuronlab.errors import ConfigError, ImageError

SIZE = 28
FITS = ("box", "stretch")
# caps on what one picture may cost: a digit needs no more; a 52 KB PNG can decode to 14000x14000
MAX_PIXELS = 50_000_000
MAX_DECODED_BYTES = 128 * 2**20
# longer side pictures are first reduced to (by an integer factor) before any float copy is made
MAX_SIDE = 1024
# how far (in grey levels of 255) some pixel must stand out from the background to count as ink
MIN_INK = 16


@dataclass
class Prepared:
    """A 28x28 float image in [0, 1] (white on black) and what was done to get it, in words."""

    pixels: np.ndarray
    notes: list[str] = field(default_factory=list)


def load_image(path: Path) -> Image.Image:
    """Open an image file, or raise :class:`ImageError` saying why it cannot be read."""
    if not path.exists():
        raise ImageError("no such file")
    if not path.is_file():
        raise ImageError("not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own cap comes first
            with Image.open(path) as image:
                check_size(image)  # from the header, before a byte is decoded
                image.load()
                return ImageOps.exif_transpose(image)  # phone photos: upright as they are shown
    except UnidentifiedImageError:
        raise ImageError("not an image PIL can read (PNG, JPEG, BMP, GIF, ... expected)") from None
    except Image.DecompressionBombError as err:  # PIL's own cap, raised while reading the header
        raise ImageError(f"picture too large ({err}); shrink it first") from None
    except OSError as err:
        raise ImageError(f"damaged image ({err})") from None


def check_size(image: Image.Image) -> None:
    """Refuse a picture over :data:`MAX_PIXELS` pixels or :data:`MAX_DECODED_BYTES` decoded bytes."""
    width, height = image.size
    pixels = width * height
    depth = 2 if image.mode.startswith("I;16") else 4 if image.mode in ("I", "F") else 1
    decoded = pixels * len(image.getbands()) * depth
    if pixels > MAX_PIXELS or decoded > MAX_DECODED_BYTES:
        raise ImageError(
            f"picture too large: {width}x{height} pixels ({pixels / 1e6:.1f} megapixels, "
            f"{decoded / 2**20:.0f} MiB decoded); the limits are {MAX_PIXELS / 1e6:.0f} megapixels and "
            f"{MAX_DECODED_BYTES / 2**20:.0f} MiB: shrink it first (a digit needs a few hundred pixels)"
        )


def to_grey(image: Image.Image, notes: list[str]) -> np.ndarray:
    """Float greyscale in [0, 255]; transparent parts count as white paper."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(paper, image.convert("RGBA"))
        notes.append("transparency on white")
    if image.mode.startswith("I") or image.mode == "F":  # 16/32-bit or float grey: scale, don't clip
        grey = np.asarray(image, dtype=np.float32)
        if not np.isfinite(grey).all():  # a float TIFF can hold NaN or infinity: no grey level
            raise ImageError("pixels that are not numbers (NaN or infinity): not a picture to classify")
        top = 65535.0 if image.mode.startswith("I;16") or grey.max(initial=0) > 255 else 255.0
        if image.mode == "F" and grey.max(initial=0) <= 1:
            top = 1.0
        notes.append(f"{image.mode} -> 8-bit grey")
        return np.clip(grey * (255.0 / top), 0, 255)
    if image.mode not in ("L", "1"):
        notes.append(f"{image.mode} -> grey")
    return np.asarray(image.convert("L"), dtype=np.float32)


def border(pixels: np.ndarray) -> np.ndarray:
    return np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])


def fit_box(pixels: np.ndarray, box: int, by_mass: bool, notes: list[str]) -> np.ndarray:
    """Crop the ink's bounding box, scale it into ``box`` x ``box`` and centre it in 28x28."""
    rows, cols = np.nonzero(pixels > 0.2 * pixels.max())
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    crop = pixels[top:bottom, left:right]
    height, width = crop.shape
    scale = box / max(height, width)
    new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
    small = np.asarray(
        Image.fromarray(crop.astype(np.uint8)).resize((new_w, new_h), Image.Resampling.LANCZOS), np.float32
    )
    if by_mass:
        ys, xs = np.indices(small.shape)
        total = small.sum()
        cy, cx = (ys * small).sum() / total, (xs * small).sum() / total
    else:
        cy, cx = (new_h - 1) / 2, (new_w - 1) / 2
    # top-left corner that puts (cy, cx) at the frame's centre, kept inside the frame
    y0 = int(np.clip(round((SIZE - 1) / 2 - cy), 0, SIZE - new_h))
    x0 = int(np.clip(round((SIZE - 1) / 2 - cx), 0, SIZE - new_w))
    out = np.zeros((SIZE, SIZE), np.float32)
    out[y0 : y0 + new_h, x0 : x0 + new_w] = small
    notes.append(f"ink {width}x{height} -> {new_w}x{new_h}, centred by {'mass' if by_mass else 'box'}")
    return out


def prepare(image: Image.Image, box: int = 20, by_mass: bool = True, fit: str = "box") -> Prepared:
    """The MNIST-format version of ``image``; a 28x28 image is taken as it is (after grey/invert).
    ``fit="box"`` is MNIST's recipe (ink box into ``box`` x ``box``, centred); ``fit="stretch"`` resizes the
    whole picture, for pictures already framed like the training images (e.g. an enlarged sample)."""
    if fit not in FITS:
        raise ConfigError(f"fit={fit!r} is not known; allowed: {', '.join(FITS)}")
    notes: list[str] = []
    width, height = image.size  # as given (for the notes)
    factor = -(-max(width, height) // MAX_SIDE)
    if factor > 1:  # a big photo: shrink it first (box filter): a digit needs no more, memory stays small
        with contextlib.suppress(ValueError):  # a mode reduce() does not handle is used as it is
            image = image.reduce(factor)
            notes.append(f"reduced 1/{factor} first")
    pixels = to_grey(image, notes)
    if border(pixels).mean() > 127:  # light paper, dark ink: MNIST is white ink on black
        pixels = 255 - pixels
        notes.append("inverted (light background)")
    background = float(np.median(border(pixels))) if min(pixels.shape) > 2 else float(pixels.min())
    if pixels.max() - background < MIN_INK:  # the same rule at every size, 28x28 included
        raise ImageError(
            f"blank image: no pixel stands out from the background by {MIN_INK} grey levels or more"
        )
    if (height, width) != (SIZE, SIZE):
        # paper is rarely pure black: make the background 0 and the strongest ink 255
        pixels = np.clip(pixels - background, 0, None)
        pixels *= 255 / pixels.max()
        if fit == "box":
            pixels = fit_box(pixels, box, by_mass, notes)
        else:
            resized = Image.fromarray(pixels.astype(np.uint8)).resize((SIZE, SIZE), Image.Resampling.LANCZOS)
            pixels = np.asarray(resized, np.float32)
        notes.append(f"resized {width}x{height} -> {SIZE}x{SIZE}")
    else:
        notes.append("already 28x28")
    return Prepared(pixels / 255.0, notes)
