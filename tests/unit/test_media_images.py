"""Image loading (formats, modes, alpha, 16-bit, EXIF), the resize/crop policy and tensor conversion."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from geovid.errors import InputError
from geovid.media.images import fit_to_resolution, from_tensor, load_image, to_tensor


def _pattern(h: int = 24, w: int = 40) -> np.ndarray:
    """A non-symmetric RGB test image (so flips and rotations show)."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // (w - 1), yy * 255 // (h - 1), (xx + yy) % 7 * 36], axis=-1).astype(np.uint8)
    img[:4, :6] = (255, 0, 0)  # a red corner at the top left
    return img


@pytest.mark.parametrize("suffix,lossless", [(".png", True), (".bmp", True), (".tif", True), (".webp", True),
                                             (".jpg", False)])
def test_rgb_formats(tmp_path: Path, suffix: str, lossless: bool) -> None:
    img = _pattern()
    path = tmp_path / f"img{suffix}"
    kwargs = {"lossless": True} if suffix == ".webp" else {"quality": 95, "subsampling": 0} if suffix == ".jpg" else {}
    Image.fromarray(img).save(path, **kwargs)
    out = load_image(path)
    assert out.shape == img.shape and out.dtype == np.uint8
    err = np.abs(out.astype(int) - img.astype(int))
    assert (err.max() == 0) if lossless else (err.mean() < 4)


def test_rgba_is_composited_on_white_by_default(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = (200, 0, 0)
    rgba[0, 0, 3], rgba[0, 1, 3], rgba[0, 2, 3] = 0, 255, 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out[0, 0].tolist() == [255, 255, 255]  # fully transparent -> background
    assert out[0, 1].tolist() == [200, 0, 0]  # opaque -> colour
    assert out[0, 2].tolist() == [227, 127, 127]  # 200·128/255 + 255·127/255 = 227.4
    black = load_image(tmp_path / "a.png", background=(0, 0, 0))
    assert black[0, 0].tolist() == [0, 0, 0] and black[0, 2].tolist() == [100, 0, 0]


def test_gray_la_palette_and_bilevel(tmp_path: Path) -> None:
    gray = (np.arange(48).reshape(6, 8) * 5).astype(np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    out = load_image(tmp_path / "g.png")
    assert out.shape == (6, 8, 3) and (out == gray[..., None]).all()

    la = np.stack([gray, np.zeros_like(gray)], axis=-1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert (load_image(tmp_path / "la.png") == 255).all()  # fully transparent grey -> white

    pal = Image.fromarray(_pattern()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(tmp_path / "p.png")
    assert (load_image(tmp_path / "p.png") == np.asarray(pal.convert("RGB"))).all()

    pal.info["transparency"] = 0  # palette index 0 transparent
    pal.save(tmp_path / "pt.png", transparency=0)
    out = load_image(tmp_path / "pt.png")
    idx0 = np.asarray(pal) == 0
    assert idx0.any() and (out[idx0] == 255).all()

    Image.fromarray(gray > 100).convert("1").save(tmp_path / "b.png")
    out = load_image(tmp_path / "b.png")
    assert set(np.unique(out).tolist()) == {0, 255} and ((out[..., 0] == 255) == (gray > 100)).all()


def test_gif_and_cmyk(tmp_path: Path) -> None:
    img = _pattern()
    Image.fromarray(img).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    assert np.abs(load_image(tmp_path / "c.jpg").astype(int) - img.astype(int)).mean() < 6
    frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)) for v in (10, 200)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert load_image(tmp_path / "anim.gif").shape == (8, 8, 3)  # the first frame


def test_16_bit_gray_and_rgb_are_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257, 32896, 65535]], np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), values)
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    assert load_image(tmp_path / "g16.png")[0, :, 0].tolist() == [0, 1, 128, 255]

    rgb16 = np.zeros((2, 2, 3), np.uint16)
    rgb16[0, 0] = (65535, 32896, 0)
    cv2.imwrite(str(tmp_path / "c16.png"), rgb16[..., ::-1])  # OpenCV writes BGR
    assert load_image(tmp_path / "c16.png")[0, 0].tolist() == [255, 128, 0]


@pytest.mark.parametrize("orientation,k", [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, k: int) -> None:
    img = _pattern()
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(img).save(tmp_path / "o.png", exif=exif)
    # 3: rotate 180°, 6: rotate 90° clockwise, 8: rotate 90° counter-clockwise to display.
    assert (load_image(tmp_path / "o.png") == np.rot90(img, k)).all()


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(InputError, match="is a folder"):
        load_image(tmp_path)
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(InputError, match=r"^notes\.png is not a readable image"):
        load_image(tmp_path / "notes.png")
    Image.fromarray(_pattern(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"^cut\.png is damaged"):
        load_image(tmp_path / "cut.png")


@pytest.mark.parametrize("side,shown", [(12000, "12000×12000 pixels (144 megapixels)"),  # above Pillow's warning
                                        (14000, "196 megapixels")])  # above Pillow's error (2 × its limit)
def test_very_large_image_is_refused_in_one_line_without_pillow_warning(tmp_path: Path, side: int,
                                                                        shown: str) -> None:
    """A 12000×12000 PNG used to print Pillow's raw DecompressionBombWarning and go on: now one clear line that
    states the size and the limit, raised before the pixels are decoded (docs/media.md). 1-bit: ~20 KB on disk."""
    import warnings

    import geovid.media.images as images

    Image.new("1", (side, side)).save(tmp_path / "big.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError) as err:
            load_image(tmp_path / "big.png")
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"big.png is {shown}, more than geovid reads")
    assert f"{images.MAX_IMAGE_PIXELS / 1e6:.1f} megapixels" in msg and "shrink it first" in msg


def test_image_size_limit_is_geovid_s_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The limit is ``MAX_IMAGE_PIXELS`` (Pillow's default warning threshold), checked on width × height."""
    import geovid.media.images as images

    assert images.MAX_IMAGE_PIXELS == Image.MAX_IMAGE_PIXELS == 89_478_485
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 20 * 20)
    Image.fromarray(_pattern(20, 20)).save(tmp_path / "ok.png")
    assert load_image(tmp_path / "ok.png").shape == (20, 20, 3)  # exactly at the limit: read
    Image.fromarray(_pattern(20, 21)).save(tmp_path / "over.png")
    with pytest.raises(InputError, match=r"^over\.png is 21×20 pixels \(0 megapixels\), more than geovid reads"):
        load_image(tmp_path / "over.png")


# --------------------------------------------------------------------------- resolution


def _thirds(h: int, w: int) -> np.ndarray:
    """Left third red, middle green, right third blue."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 3, 0] = 255
    img[:, w // 3 : 2 * w // 3, 1] = 255
    img[:, 2 * w // 3 :, 2] = 255
    return img


def test_center_crop_keeps_the_middle() -> None:
    out = fit_to_resolution(_thirds(100, 300), 64)
    assert out.shape == (64, 64, 3)
    # 300x100 -> 192x64, centre 64 columns = exactly the green third.
    assert (out[..., 1] == 255).all() and out[..., 0].max() == 0 and out[..., 2].max() == 0
    tall = fit_to_resolution(_thirds(90, 300).transpose(1, 0, 2), 32)  # thirds stacked vertically
    assert tall.shape == (32, 32, 3) and (tall[..., 1] == 255).all()


def test_center_crop_non_square_target_and_upscaling() -> None:
    out = fit_to_resolution(_thirds(10, 30), (48, 64))
    assert out.shape == (48, 64, 3)
    up = fit_to_resolution(np.full((5, 7, 3), 77, np.uint8), 64)
    assert up.shape == (64, 64, 3) and (up == 77).all()


def test_area_interpolation_does_not_alias() -> None:
    checker = ((np.indices((256, 256)).sum(axis=0) % 2) * 255).astype(np.uint8)
    out = fit_to_resolution(np.repeat(checker[..., None], 3, axis=2), 64)
    # Area averaging of a 1-pixel checkerboard is flat grey; nearest/bilinear sampling would give 0s/255s.
    assert np.abs(out.astype(int) - 128).max() <= 1


def test_pad_and_stretch() -> None:
    img = _thirds(100, 200)
    pad = fit_to_resolution(img, 64, policy="pad", fill=(9, 9, 9))
    assert pad.shape == (64, 64, 3)
    assert (pad[:16] == 9).all() and (pad[48:] == 9).all()  # 200x100 -> 64x32, centred vertically
    assert pad[16:48, :20, 0].min() == 255 and pad[16:48, -20:, 2].min() == 255  # nothing cut off
    st = fit_to_resolution(img, (20, 30), policy="stretch")
    assert st.shape == (20, 30, 3) and st[:, :9, 0].min() == 255 and st[:, -9:, 2].min() == 255
    with pytest.raises(InputError, match="unknown resize policy"):
        fit_to_resolution(img, 8, policy="zoom")  # type: ignore[arg-type]


def test_batch_of_frames_is_treated_alike() -> None:
    batch = np.stack([_thirds(90, 160), 255 - _thirds(90, 160)])
    out = fit_to_resolution(batch, 32)
    assert out.shape == (2, 32, 32, 3)
    assert (out[0] == fit_to_resolution(batch[0], 32)).all() and (out[1] == fit_to_resolution(batch[1], 32)).all()
    with pytest.raises(InputError, match="uint8"):
        fit_to_resolution(batch.astype(np.float32), 32)


# --------------------------------------------------------------------------- tensors


def test_tensor_roundtrip_is_exact() -> None:
    imgs = np.random.default_rng(0).integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    t = to_tensor(imgs)
    assert t.shape == (3, 3, 5, 7) and t.dtype == torch.float32
    assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    assert torch.equal(t[1, 2], torch.from_numpy(imgs[1, ..., 2]).float() / 255)  # channel-first
    assert (from_tensor(t) == imgs).all()
    single = to_tensor(imgs[0])
    assert single.shape == (3, 5, 7) and (from_tensor(single) == imgs[0]).all()


def test_from_tensor_clamps_and_rounds() -> None:
    t = torch.tensor([-0.5, 0.0, 0.4 / 255, 0.6 / 255, 1.0, 2.0]).reshape(1, 1, 1, 6).repeat(1, 3, 1, 1)
    assert from_tensor(t)[0, 0, :, 0].tolist() == [0, 0, 0, 1, 255, 255]
    assert from_tensor(torch.tensor([-1.0, 0.0, 1.0]).reshape(3, 1, 1), value_range=(-1, 1))[0, 0].tolist() == [
        0, 128, 255]
    with pytest.raises(InputError):
        to_tensor(np.zeros((4, 4, 3), np.float32))
