"""Offline stand-ins for every concept, generated deterministically from a seed.

- digits and letters: glyphs rendered from the TrueType fonts that matplotlib ships, then randomly
  distorted (affine, elastic, stroke width, blur, contrast) and centred in 28x28 like EMNIST;
- omniglot: characters drawn from random smooth pen strokes;
- cifar10: grey patches cut from the photographs that scikit-learn ships.
``distortion`` scales every random deformation (1.0 is the calibrated default).
"""

from __future__ import annotations

import math
import string
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from gradmeta.core.concepts import IMAGE_SIZE
from gradmeta.core.errors import GradmetaError
from gradmeta.datasets.imageops import area_resize, rgb_to_grey

GENERATOR_VERSION = 1
TEMPLATE_SIZE = 64
WORK_SIZE = 2 * IMAGE_SIZE
CANVAS_SIZE = 80
FIELD_OF_VIEW = 1.5
CHUNK = 2048
# Deformation amplitudes are scaled so that distortion=1.0 leaves the default CNN 1-5% test error.
DISTORTION_SCALE = 2.0
DIGITS = string.digits
LETTERS = string.ascii_lowercase

# Fonts shipped with matplotlib that have upright Latin glyphs for every digit and letter.
BUNDLED_FONTS = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf",
    "DejaVuSansMono-BoldOblique.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf", "cmr10.ttf", "cmb10.ttf", "cmss10.ttf", "cmti10.ttf", "cmtt10.ttf",
)


def font_paths(extra_fonts: list[str] | tuple[str, ...] = ()) -> list[Path]:
    """The bundled matplotlib fonts plus any extra font files (each must exist)."""
    base = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    paths = [base / name for name in BUNDLED_FONTS]
    for extra in extra_fonts:
        p = Path(extra)
        if not p.is_file():
            raise GradmetaError(f"data.synthetic.extra_fonts: font file {extra} not found")
        paths.append(p)
    return paths


def _render_glyph(font: ImageFont.FreeTypeFont, char: str, size: int, fill: float) -> np.ndarray:
    canvas = Image.new("L", (4 * size, 4 * size), 0)
    ImageDraw.Draw(canvas).text((size, size), char, font=font, fill=255)
    arr = np.asarray(canvas)
    ys, xs = np.nonzero(arr > 0)
    if len(ys) == 0:
        raise GradmetaError(f"font {font.path} renders no pixels for {char!r}")
    crop = Image.fromarray(arr[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1])
    h, w = crop.height, crop.width
    scale = fill * size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    crop = crop.resize((nw, nh), Image.Resampling.LANCZOS)
    out = Image.new("L", (size, size), 0)
    out.paste(crop, ((size - nw) // 2, (size - nh) // 2))
    return np.asarray(out, dtype=np.float32) / 255.0


@lru_cache(maxsize=8)
def _templates(chars: str, fonts: tuple[str, ...]) -> torch.Tensor:
    out = np.empty((len(fonts), len(chars), TEMPLATE_SIZE, TEMPLATE_SIZE), dtype=np.float32)
    for f, path in enumerate(fonts):
        try:
            font = ImageFont.truetype(path, size=96)
        except OSError as exc:
            raise GradmetaError(f"data.synthetic.extra_fonts: cannot load font {path} ({exc})") from None
        for c, char in enumerate(chars):
            out[f, c] = _render_glyph(font, char, TEMPLATE_SIZE, fill=0.86)
    return torch.from_numpy(out)


def glyph_templates(chars: str, extra_fonts: list[str] | tuple[str, ...] = ()) -> torch.Tensor:
    """Clean glyphs float32 (fonts, len(chars), 64, 64) in [0, 1], each centred by its bounding box."""
    return _templates(chars, tuple(str(p) for p in font_paths(extra_fonts)))


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(2.5 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def _blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    k = _gaussian_kernel(sigma)
    r = len(k) // 2
    x = F.conv2d(F.pad(images, (r, r, 0, 0)), k.view(1, 1, 1, -1))
    return F.conv2d(F.pad(x, (0, 0, r, r)), k.view(1, 1, -1, 1))


def _fit_to_frame(img: torch.Tensor) -> torch.Tensor:
    """Scale each (n, 1, H, W) glyph so its bounding box's longer side spans the frame less a 2-pixel
    border (at 28x28), centred, as EMNIST's conversion does; output (n, 1, 56, 56)."""
    n, _, h, w = img.shape
    ink = img[:, 0] > 0.08
    rows, cols = ink.any(dim=2), ink.any(dim=1)
    ar_h, ar_w = torch.arange(h).float(), torch.arange(w).float()
    big = 1e9
    y0 = torch.where(rows, ar_h, big).amin(1)
    y1 = torch.where(rows, ar_h, -big).amax(1)
    x0 = torch.where(cols, ar_w, big).amin(1)
    x1 = torch.where(cols, ar_w, -big).amax(1)
    empty = ~rows.any(1)
    # normalised coordinates (align_corners=False): pixel i spans [2i/W - 1, 2(i+1)/W - 1]
    cy = torch.where(empty, 0.0, (y0 + y1 + 1) / h - 1)
    cx = torch.where(empty, 0.0, (x0 + x1 + 1) / w - 1)
    half = torch.where(empty, 1.0, torch.maximum((y1 - y0 + 1) / h, (x1 - x0 + 1) / w))
    k = half / ((IMAGE_SIZE - 4) / IMAGE_SIZE)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = k, k
    theta[:, 0, 2], theta[:, 1, 2] = cx, cy
    grid = F.affine_grid(theta, [n, 1, WORK_SIZE, WORK_SIZE], align_corners=False)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _stroke_width(img: torch.Tensor, stroke: np.ndarray) -> torch.Tensor:
    """Per image (n, 1, H, W): stroke -1 = eroded, 0 = as is, 1 = dilated, 2 = dilated twice (3x3 max
    filters). Each filter runs only on the images that use it (a max is exact, so the same values)."""
    out = img.clone()
    grow = np.nonzero(stroke >= 1)[0]
    if len(grow):
        dilated = F.max_pool2d(img[torch.from_numpy(grow)], 3, 1, 1)
        again = torch.from_numpy(np.nonzero(stroke[grow] == 2)[0])
        dilated[again] = F.max_pool2d(dilated[again], 3, 1, 1)
        out[torch.from_numpy(grow)] = dilated
    shrink = np.nonzero(stroke == -1)[0]
    if len(shrink):
        t = torch.from_numpy(shrink)
        out[t] = -F.max_pool2d(-img[t], 3, 1, 1)
    return out


def _distort_chunk(glyphs: torch.Tensor, rng: np.random.Generator, strength: float) -> torch.Tensor:
    """Random affine + elastic warp, stroke width, blur and contrast of (n, 1, 64, 64) glyphs -> (n, 28, 28) in [0, 1]."""
    n = glyphs.shape[0]
    s = strength * DISTORTION_SCALE
    angle = np.deg2rad(rng.uniform(-14, 14, n) * s)
    shear = rng.uniform(-0.35, 0.35, n) * s
    scale = np.exp(rng.normal(0.0, 0.09, n) * s)
    aspect = np.exp(rng.normal(0.0, 0.1, n) * s)
    shift = rng.uniform(-0.07, 0.07, (n, 2)) * s
    cos, sin = np.cos(angle), np.sin(angle)
    sx, sy = scale * aspect, scale / aspect
    theta = np.zeros((n, 2, 3))
    theta[:, 0, 0] = cos / sx
    theta[:, 0, 1] = (-sin + shear * cos) / sx
    theta[:, 1, 0] = sin / sy
    theta[:, 1, 1] = (cos + shear * sin) / sy
    theta[:, :, :2] *= FIELD_OF_VIEW  # the canvas sees more than the template, so nothing is clipped
    theta[:, :, 2] = shift
    grid = F.affine_grid(torch.from_numpy(theta).float(), [n, 1, CANVAS_SIZE, CANVAS_SIZE], align_corners=False)
    coarse = torch.from_numpy(rng.normal(0.0, 0.055 * s, (n, 2, 4, 4))).float()
    field = F.interpolate(coarse, size=(CANVAS_SIZE, CANVAS_SIZE), mode="bicubic", align_corners=True)
    grid = grid + field.permute(0, 2, 3, 1)
    img = F.grid_sample(glyphs, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    stroke = rng.choice([-1, 0, 1, 2], size=n, p=[0.2, 0.35, 0.3, 0.15])
    img = _stroke_width(img, stroke)

    sigma_choice = rng.choice(3, size=n, p=[0.4, 0.4, 0.2])
    for level, sigma in ((1, 0.7), (2, 1.2)):
        idx = np.nonzero(sigma_choice == level)[0]
        if len(idx):
            t = torch.from_numpy(idx)
            img[t] = _blur(img[t], sigma)
    img = F.avg_pool2d(_fit_to_frame(img), 2)
    peak = img.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    contrast = torch.from_numpy(rng.uniform(0.75, 1.0, (n, 1, 1, 1))).float()
    return (img / peak * contrast).clamp(0, 1)[:, 0]


def render_glyphs(chars: str, count: int, rng: np.random.Generator, *, distortion: float = 1.0,
                  extra_fonts: list[str] | tuple[str, ...] = (), case_mix: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``count`` distorted glyph images uint8 (count, 28, 28) and their class (position in ``chars``).

    With ``case_mix`` each image uses the upper- or lower-case form at random (EMNIST letters mix both).
    """
    templates = glyph_templates(chars, extra_fonts)
    upper = glyph_templates(chars.upper(), extra_fonts) if case_mix else None
    labels = rng.integers(0, len(chars), count)
    fonts = rng.integers(0, templates.shape[0], count)
    use_upper = rng.random(count) < 0.5 if case_mix else np.zeros(count, dtype=bool)
    images = np.empty((count, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for start in range(0, count, CHUNK):
        sl = slice(start, min(count, start + CHUNK))
        f, c = torch.from_numpy(fonts[sl]), torch.from_numpy(labels[sl])
        glyphs = templates[f, c]
        if upper is not None:
            glyphs = torch.where(torch.from_numpy(use_upper[sl]).view(-1, 1, 1), upper[f, c], glyphs)
        out = _distort_chunk(glyphs.unsqueeze(1), rng, distortion)
        images[sl] = torch.round(out * 255).to(torch.uint8).numpy()
    return images, labels.astype(np.int64)


def _smooth_path(points: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Chaikin corner cutting of a polyline (k, 2): a smooth pen-like curve."""
    for _ in range(iterations):
        q = 0.75 * points[:-1] + 0.25 * points[1:]
        r = 0.25 * points[:-1] + 0.75 * points[1:]
        points = np.concatenate([points[:1], np.stack([q, r], 1).reshape(-1, 2), points[-1:]])
    return points


def pen_strokes(count: int, rng: np.random.Generator) -> np.ndarray:
    """Omniglot-like characters uint8 (count, 28, 28): 1-3 joined smooth random strokes, white on black."""
    images = np.empty((count, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    size = 4 * IMAGE_SIZE
    for i in range(count):
        canvas = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(canvas)
        width = int(rng.integers(6, 10))
        start = rng.uniform(0.3 * size, 0.7 * size, 2)
        for _ in range(int(rng.integers(1, 4))):
            k = int(rng.integers(3, 7))
            steps = rng.normal(0, 0.2 * size, (k - 1, 2))
            pts = np.clip(np.vstack([start, start + np.cumsum(steps, axis=0)]), 0.12 * size, 0.88 * size)
            path = _smooth_path(pts)
            draw.line([tuple(p) for p in path], fill=255, width=width, joint="curve")
            start = path[int(rng.integers(len(path)))]  # the next stroke starts on this one
        images[i] = area_resize(np.asarray(canvas), IMAGE_SIZE)
    return images


@lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_sample_images

    return tuple(rgb_to_grey(np.asarray(img)) for img in load_sample_images().images)


def random_crops(photos: tuple[np.ndarray, ...], count: int, rng: np.random.Generator, size: int) -> np.ndarray:
    """``count`` square crops of ``photos`` (grey (H, W) or colour (H, W, 3) uint8), each from a random photo at a
    random side between ``size`` and half the photo's shorter side, half of them mirrored, area-resized to
    ``size`` x ``size``."""
    images = np.empty((count, size, size, *photos[0].shape[2:]), dtype=np.uint8)
    for i in range(count):
        photo = photos[int(rng.integers(len(photos)))]
        h, w = photo.shape[:2]
        side = int(rng.integers(size, min(h, w) // 2))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        patch = photo[y: y + side, x: x + side]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        images[i] = area_resize(np.ascontiguousarray(patch), size)
    return images


def photo_patches(count: int, rng: np.random.Generator) -> np.ndarray:
    """CIFAR-like grey patches uint8 (count, 28, 28) cut at random sizes from scikit-learn's sample photos."""
    return random_crops(_photos(), count, rng, IMAGE_SIZE)

