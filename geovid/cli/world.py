"""``geovid world ...``: render world images, clips and datasets, and check images for plausibility."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from geovid.cli.common import QuietOpt, RichProgress, user_errors

world_app = typer.Typer(
    name="world",
    help="The procedural scene world (small CLEVR-like scenes): images, clips with known motion, datasets, "
         "and a plausibility checker.",
    no_args_is_help=True,
)

_MOTIONS = ("linear", "accelerate", "orbit", "appear", "colour", "jitter")  # mirrors geovid.world.clips.MOTIONS
_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

SceneSeedOpt = Annotated[int, typer.Option("--seed", help="Scene seed; the same seed gives identical pixels.")]
SizeOpt = Annotated[int, typer.Option("--size", help="Image width and height in pixels (8-1024).")]


def _check_size(size: int) -> None:
    from geovid.errors import InputError

    if not 8 <= size <= 1024:
        raise InputError(f"--size must be between 8 and 1024, got {size}")


@world_app.command("image")
def image_cmd(
    out: Annotated[Path, typer.Argument(help="Output image (.png, .jpg, ...).")],
    seed: SceneSeedOpt = 0,
    size: SizeOpt = 64,
) -> None:
    """Render one random scene and print its caption."""
    with user_errors():
        from geovid.errors import InputError

        _check_size(size)
        if out.suffix.lower() not in _IMAGE_EXT:
            raise InputError(f"unsupported image extension {out.suffix!r} (use {', '.join(_IMAGE_EXT)})")
        from PIL import Image

        from geovid.world.render import render_seed

        img, cap, _ = render_seed(seed, size)
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            Image.fromarray(img).save(out)
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc}") from exc
        typer.echo(cap)


@world_app.command("clip")
def clip_cmd(
    out: Annotated[Path, typer.Argument(help="Output video: .mp4, .mkv, .mov, .avi, .webm or .gif.")],
    motion: Annotated[str, typer.Option("--motion", help=f"One of: {', '.join(_MOTIONS)}.")] = "linear",
    frames: Annotated[int, typer.Option("--frames", help="Number of frames (2-1000).")] = 16,
    fps: Annotated[float, typer.Option("--fps", help="Frames per second of the file.")] = 8.0,
    seed: SceneSeedOpt = 0,
    size: SizeOpt = 64,
    png_dir: Annotated[Path | None, typer.Option("--png-dir", help="Also write frame_000.png, ... here.")] = None,
) -> None:
    """Render a clip with known motion and print its caption."""
    with user_errors():
        from geovid.errors import InputError

        _check_size(size)
        if motion not in _MOTIONS:
            raise InputError(f"unknown motion {motion!r} (choose from {', '.join(_MOTIONS)})")
        if not 2 <= frames <= 1000:
            raise InputError(f"--frames must be between 2 and 1000, got {frames}")
        if not 0 < fps <= 240:
            raise InputError(f"--fps must be in (0, 240], got {fps}")
        from geovid.media.formats import WRITABLE_VIDEO_EXTENSIONS

        if out.suffix.lower() not in WRITABLE_VIDEO_EXTENSIONS:
            raise InputError(f"unsupported video extension {out.suffix!r} "
                             f"(use {', '.join(WRITABLE_VIDEO_EXTENSIONS)})")
        from geovid.world.clips import make_clip

        imgs, _, cap = make_clip(motion, frames, seed, size)
        from geovid.media.writers import write_video

        write_video(imgs, out, fps=fps)
        if png_dir is not None:
            from PIL import Image

            png_dir.mkdir(parents=True, exist_ok=True)
            for i, im in enumerate(imgs):
                Image.fromarray(im).save(png_dir / f"frame_{i:03d}.png")
        typer.echo(cap)


@world_app.command("dataset")
def dataset_cmd(
    out_dir: Annotated[Path, typer.Argument(help="Output folder (created).")],
    n: Annotated[int, typer.Option("--n", help="Number of scenes.")] = 1000,
    start_seed: Annotated[int, typer.Option("--start-seed", help="Seed of the first scene.")] = 0,
    size: SizeOpt = 64,
    quiet: QuietOpt = False,
) -> None:
    """Write N rendered scenes as PNGs plus captions.jsonl (file, seed, caption, scene)."""
    with user_errors():
        _check_size(size)
        from geovid.world.dataset import write_dataset

        with RichProgress(quiet=quiet) as progress:
            path = write_dataset(out_dir, n, start_seed=start_seed, size=size, progress=progress)
        typer.echo(f"wrote {n} scenes and {path}")


@world_app.command("check")
def check_cmd(
    image: Annotated[Path, typer.Argument(help="Image to judge (any size; thresholds are tuned at 64x64).")],
    caption: Annotated[str | None, typer.Option("--caption", help="Caption to compare with.")] = None,
    strictness: Annotated[str, typer.Option("--strictness", help="strict, default or lenient.")] = "default",
) -> None:
    """Judge whether an image is a clean world scene; exit 0 if plausible, 1 if not."""
    with user_errors():
        from geovid.errors import InputError

        if strictness not in ("strict", "default", "lenient"):
            raise InputError(f"--strictness must be strict, default or lenient, got {strictness!r}")
        if not image.is_file():
            raise InputError(f"no such image: {image}")
        import numpy as np
        from PIL import Image, UnidentifiedImageError

        try:
            arr = np.asarray(Image.open(image).convert("RGB"))
        except (UnidentifiedImageError, OSError) as exc:
            raise InputError(f"cannot read {image}: {exc}") from exc
        from geovid.world.checker import check

        res = check(arr, caption, thresholds=strictness)
    verdict = "plausible" if res.plausible else "implausible"
    objs = ", ".join(f"{o['colour']} {o['shape']}" for o in res.objects) or "none"
    typer.echo(f"{verdict}; objects: {objs}")
    for r in res.reasons:
        typer.echo(f"  - {r}")
    if caption is not None:
        typer.echo(f"caption match: {res.matches_caption} (colours: {res.colours_match})")
    if not res.plausible:
        raise typer.Exit(1)
