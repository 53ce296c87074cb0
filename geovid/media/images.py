"""Still images in, pixels normalised: load any common image as RGB uint8, fit it to the backbone's resolution,
and convert between uint8 arrays and the float tensors the backbones take (docs/method.md §7.1, §8).

Policies (documented in ``docs/media.md``):

* **Alpha** is composited on **white** by default: transparent PNG/WebP cut-outs (logos, product shots) are
  meant to be seen on a light page, and the images a Stable-Diffusion model was trained on show them that
  way; compositing on black would turn anti-aliased edges into dark halos. ``background=`` overrides it.
* **16-bit** images are reduced to 8 bits by rounding ``v / 257`` (65535 → 255), never by clipping.
* **EXIF orientation** is applied, so a phone photo comes out the way it is displayed.
* **Size limit**: images above :data:`MAX_IMAGE_PIXELS` (89.5 megapixels, Pillow's own decompression-bomb
  threshold) are refused with one line stating the size and the limit, before their pixels are decoded; the
  model sees every image at its own resolution (at most 512×512) anyway.
* **Resolution** (:func:`fit_to_resolution`, also used for video frames): by default scale so the image
  covers the target (the short side becomes the target size for a square target), then crop the centre.
  Downscaling uses area averaging (``cv2.INTER_AREA``: no aliasing on the large reductions typical of video
  frames), upscaling bicubic (area interpolation degenerates to nearest/bilinear when enlarging).
  ``"pad"`` letterboxes instead (nothing is cut off) and ``"stretch"`` ignores the aspect ratio.

cv2, PIL and torch are imported lazily.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from geovid.errors import InputError

if TYPE_CHECKING:
    import torch

FitPolicy = Literal["center-crop", "pad", "stretch"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
#: Largest image (width × height) :func:`load_image` reads: Pillow's default ``Image.MAX_IMAGE_PIXELS``
#: (≈ 9459 × 9459), above which Pillow itself warns of a decompression bomb. Decoding such an image needs
#: 3 bytes per pixel (more during mode conversion) while the model uses at most 512 × 512 of it.
MAX_IMAGE_PIXELS = 89_478_485


def _too_large(name: str, pixels: int, size: tuple[int, int] | None = None) -> InputError:
    """The one-line error for an image above :data:`MAX_IMAGE_PIXELS`."""
    dims = f"{size[0]}×{size[1]} pixels ({pixels / 1e6:.0f} megapixels)" if size else f"{pixels / 1e6:.0f} megapixels"
    side = int(MAX_IMAGE_PIXELS**0.5)
    return InputError(f"{name} is {dims}, more than geovid reads ({MAX_IMAGE_PIXELS / 1e6:.1f} megapixels, e.g. "
                      f"{side}×{side}); shrink it first, e.g. to 2048 pixels on the long side (the model sees it at "
                      "its own resolution anyway)")


def load_image(path: str | Path, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Load an image file as an RGB uint8 array.

    Handles PNG, JPEG, WebP, BMP, TIFF (and the first frame of GIF/animated WebP); RGB, RGBA, grayscale
    (with or without alpha), palette, CMYK, 1-bit and 16-bit images. EXIF orientation is applied; alpha
    is composited on ``background``.

    Args:
        path: The image file.
        background: RGB colour under transparent pixels (default white).

    Returns:
        (H, W, 3) uint8 array, RGB.

    Raises:
        InputError: missing, empty, unreadable or damaged file, or an image above :data:`MAX_IMAGE_PIXELS`
            pixels, with a one-line message.
    """
    import re
    import warnings

    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an image file")
    try:
        with warnings.catch_warnings():
            # Pillow warns (above its limit) or raises (above twice its limit) while reading the header; geovid
            # applies its own limit below with one clear line instead of Pillow's raw warning.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img_cm = Image.open(path)
        with img_cm as img:
            w, h = img.size
            if w * h > MAX_IMAGE_PIXELS:
                raise _too_large(path.name, w * h, (w, h))
            img.load()
            img = ImageOps.exif_transpose(img) or img
            return _to_rgb8(img, background)
    except UnidentifiedImageError:
        raise InputError(f"{path.name} is not a readable image (PNG, JPEG, WebP, BMP or TIFF expected)") from None
    except (OSError, SyntaxError, ValueError) as err:
        # Truncated/corrupt data surfaces as OSError ("image file is truncated") or SyntaxError (broken PNG).
        msg = " ".join(str(err).split())[:120]
        raise InputError(f"{path.name} is damaged and cannot be read ({msg}); re-save or re-export it") from None
    except Image.DecompressionBombError as err:
        found = re.search(r"\((\d+) pixels\)", str(err))
        raise _too_large(path.name, int(found.group(1)) if found else 2 * MAX_IMAGE_PIXELS + 1) from None


def _to_rgb8(img: Any, background: tuple[int, int, int]) -> np.ndarray:
    """Any PIL image -> (H, W, 3) uint8 RGB, alpha composited on ``background``."""
    mode = img.mode
    if mode == "P":
        # Palette images may carry transparency in the palette; let PIL expand it.
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    elif mode in ("1", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        img = img.convert("RGB")
        mode = "RGB"
    elif mode in ("PA", "La", "RGBa"):  # palette+alpha, premultiplied alpha
        img = img.convert("RGBA")
        mode = "RGBA"

    arr = np.asarray(img)
    if mode.startswith(("I", "F")):  # 16-bit / 32-bit integer or float grayscale
        arr = _gray_to_uint8(arr, mode)
        return np.repeat(arr[..., None], 3, axis=2)
    if arr.dtype != np.uint8:
        arr = _gray_to_uint8(arr, mode)
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=2)
    if arr.shape[2] == 2:  # LA
        rgb, alpha = np.repeat(arr[..., :1], 3, axis=2), arr[..., 1]
    elif arr.shape[2] == 4:
        rgb, alpha = arr[..., :3], arr[..., 3]
    else:
        return np.ascontiguousarray(arr[..., :3])
    return _composite(rgb, alpha, background)


def _gray_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    a = arr.astype(np.float64)
    if mode == "F" or arr.dtype.kind == "f":
        # Float images: [0, 1] is the common convention; anything larger is taken as 0..255.
        scale = 255.0 if np.nanmax(a, initial=0.0) <= 1.0 else 1.0
        a = np.nan_to_num(a) * scale
    elif arr.dtype.itemsize > 1:
        a = a / 257.0  # 16-bit: 65535 -> 255 exactly
    return np.clip(np.floor(a + 0.5), 0, 255).astype(np.uint8)


def _composite(rgb: np.ndarray, alpha: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    a = alpha.astype(np.float32)[..., None] / 255.0
    bg = np.asarray(background, np.float32).reshape(1, 1, 3)
    out = rgb.astype(np.float32) * a + bg * (1.0 - a)
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)


def _size_hw(size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int | np.integer):
        h = w = int(size)
    else:
        h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise InputError(f"target size must be positive (got {size})")
    return h, w


def _resize(image: np.ndarray, h: int, w: int) -> np.ndarray:
    import cv2

    if image.shape[:2] == (h, w):
        return image
    shrinking = h <= image.shape[0] and w <= image.shape[1]
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    # cv2.resize takes (width, height); bicubic overshoot is clipped by uint8 saturation in OpenCV.
    return cv2.resize(image, (w, h), interpolation=interp)


def fit_to_resolution(image: np.ndarray, size: int | tuple[int, int], policy: FitPolicy = "center-crop",
                      fill: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Bring an image (or a batch of frames) to the backbone's resolution.

    Args:
        image: (H, W, 3) uint8, or a batch (N, H, W, 3) uint8 (each frame treated alike, so a
            clip's frames stay aligned).
        size: Target ``size`` (square) or ``(height, width)``.
        policy: ``"center-crop"`` (default): scale so the image covers the target (area
            interpolation when shrinking, bicubic when enlarging), then crop the centre.
            ``"pad"``: scale so the image fits inside, then pad the borders with ``fill``.
            ``"stretch"``: resize to the target, ignoring the aspect ratio.
        fill: Border colour for ``"pad"``.

    Returns:
        uint8 array of shape (size_h, size_w, 3) or (N, size_h, size_w, 3).
    """
    if image.ndim == 4:
        return np.stack([fit_to_resolution(f, size, policy, fill) for f in image])
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"expected an (H, W, 3) image, got shape {tuple(image.shape)}")
    if image.dtype != np.uint8:
        raise InputError(f"expected a uint8 image, got {image.dtype}")
    th, tw = _size_hw(size)
    h, w = image.shape[:2]
    if policy == "stretch":
        return _resize(image, th, tw)
    if policy == "center-crop":
        scale = max(th / h, tw / w)
        # max(...) guards against rounding leaving the scaled image one pixel short of the target.
        nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
        scaled = _resize(image, nh, nw)
        y0, x0 = (nh - th) // 2, (nw - tw) // 2
        return np.ascontiguousarray(scaled[y0 : y0 + th, x0 : x0 + tw])
    if policy == "pad":
        scale = min(th / h, tw / w)
        nh, nw = min(th, max(1, round(h * scale))), min(tw, max(1, round(w * scale)))
        scaled = _resize(image, nh, nw)
        out = np.empty((th, tw, 3), np.uint8)
        out[:] = np.asarray(fill, np.uint8)
        y0, x0 = (th - nh) // 2, (tw - nw) // 2
        out[y0 : y0 + nh, x0 : x0 + nw] = scaled
        return out
    raise InputError(f"unknown resize policy {policy!r}; use center-crop, pad or stretch")


def to_tensor(images: np.ndarray, device: str | torch.device | None = None,
              dtype: torch.dtype | None = None) -> torch.Tensor:
    """uint8 images (N, H, W, 3) -> float tensor (N, 3, H, W) in [0, 1].

    A single (H, W, 3) image gives (3, H, W).
    """
    import torch

    arr = np.asarray(images)
    if arr.dtype != np.uint8 or arr.ndim not in (3, 4) or arr.shape[-1] != 3:
        raise InputError(f"expected uint8 images of shape (N, H, W, 3) or (H, W, 3), got {arr.dtype} "
                         f"{tuple(arr.shape)}")
    t = torch.from_numpy(np.ascontiguousarray(arr))
    t = t.permute(2, 0, 1) if t.ndim == 3 else t.permute(0, 3, 1, 2)
    t = t.to(device=device, dtype=dtype or torch.float32) / 255.0
    return t.contiguous()


def from_tensor(tensor: torch.Tensor, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """float tensor (N, 3, H, W) (or (3, H, W)) -> uint8 (N, H, W, 3) (or (H, W, 3)), clamped and rounded.

    Args:
        tensor: Images with values in ``value_range``; any device or float dtype.
        value_range: The range that maps to 0..255 (e.g. ``(-1, 1)`` for VAE outputs).
    """
    import torch

    lo, hi = value_range
    t = tensor.detach().to("cpu", torch.float32)
    if t.ndim not in (3, 4) or t.shape[-3] != 3:
        raise InputError(f"expected a tensor of shape (N, 3, H, W) or (3, H, W), got {tuple(t.shape)}")
    t = ((t - lo) / (hi - lo) * 255.0).clamp(0, 255).round().to(torch.uint8)
    t = t.permute(1, 2, 0) if t.ndim == 3 else t.permute(0, 2, 3, 1)
    return t.contiguous().numpy()
