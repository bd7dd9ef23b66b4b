"""Drawing person-like crops (and off-domain crops) with numpy and PIL.

A person is a stack of soft-edged primitives (capsules, ellipses, trapezoids) drawn in pixel space: every shape
is a signed distance field turned into an anti-aliased coverage ``clip(0.5 - d, 0, 1)``, evaluated only inside
the shape's bounding window. Identity lives in :class:`Identity` (clothing colours *and* cues that survive
colour augmentation: pattern, stripe width, sleeves, lower garment, hair, hat, bag side, backpack, shoes, build);
everything else is a per-image nuisance drawn from the image's own random generator (view, walking phase,
scale/crop, illumination, colour cast, blur, occlusion, noise, JPEG quality).

Cameras keep only a *tendency* (a mean cast/brightness/blur and a favourite subset of a domain's shared,
blurred, low-contrast scenes) — each image draws its own values around it — so that "which camera" is a weak
cue, unlike the first synthetic world of docs/reference.md §11.2. Domains (:data:`DOMAINS`) differ in
clothing palette statistics, scenes, lighting and typical scale.

Everything is a pure function of its arguments: the same :class:`ImageSpec` gives the same pixels in any
process, which is what lets :mod:`reid_lab.data.synthetic.worlds` render in parallel deterministically.
"""
from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

__all__ = [
    "DOMAINS", "DomainStyle", "Identity", "ImageSpec", "VIEWS", "PATTERNS", "LOWER_KINDS",
    "sample_identity", "render", "person_mask", "encode_jpeg", "stable_hash",
]

VIEWS = ("front", "back", "left", "right")  # left/right: profile, person walking towards image left/right
PATTERNS = ("plain", "hstripes", "vstripes", "checks", "logo")
LOWER_KINDS = ("trousers", "shorts", "skirt")
LOGO_SHAPES = ("circle", "square", "diamond", "bar")
TIMES_OF_DAY = ("morning", "noon", "afternoon")


def stable_hash(text: str) -> int:
    """A process-independent 31-bit integer for ``text`` (Python's ``hash`` is salted per process)."""
    value = 2166136261
    for byte in text.encode():
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value & 0x7FFFFFFF


def _rgb(*hexes: str) -> np.ndarray:
    return np.array([[int(h[i:i + 2], 16) / 255.0 for i in (1, 3, 5)] for h in hexes], dtype=np.float32)


# --------------------------------------------------------------------------------------------------------------
# Domains
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DomainStyle:
    """Appearance statistics of one domain: who walks there, what the scenes and the light look like."""

    name: str
    upper_palette: np.ndarray  # (K, 3) RGB in [0, 1]
    upper_weights: tuple[float, ...]
    lower_palette: np.ndarray
    lower_weights: tuple[float, ...]
    pattern_p: tuple[float, ...]  # over PATTERNS
    long_sleeve_p: float
    lower_kind_p: tuple[float, ...]  # over LOWER_KINDS
    hat_p: float
    bag_p: float
    backpack_p: float
    long_hair_p: float
    scale: tuple[float, float]  # person height / image height
    stretch: tuple[float, float]  # horizontal stretch: detector boxes narrower than 1:2 are resized to 1:2
    brightness: float  # mean exposure of the domain
    indoor_fraction: float  # share of cameras that are indoor (the last ones)
    outdoor_wall: np.ndarray  # colours of walls/vegetation behind people outdoors
    outdoor_ground: np.ndarray
    indoor_wall: np.ndarray
    indoor_ground: np.ndarray
    scenes_per_camera: int = 3
    own_scene_p: float = 0.5  # probability that an image uses one of its camera's own scenes
    occlusion_p: float = 0.18
    time_of_day: bool = False  # lighting follows morning/noon/afternoon (MSMT-like)


_SUMMER_UPPER = _rgb("#f2f2f0", "#d9d9d6", "#1e1e22", "#c8322d", "#8cb4dc", "#e6c83c", "#4a9a5a", "#e8a0b4",
                     "#2a3a6a", "#ee8a32", "#7a4a9a", "#3c8ca8")
_SUMMER_LOWER = _rgb("#3c5a8c", "#1e1e22", "#8c8c8c", "#c8b48c", "#f0f0ec", "#28324a", "#6a5a46", "#b45a5a")
_WINTER_UPPER = _rgb("#18181c", "#3a3a40", "#1c2440", "#4a3426", "#4e5234", "#6a2028", "#b4a68a", "#e4e2dc",
                     "#6a6e74", "#2c4a5a", "#8a6a4a", "#a03a2a")
_WINTER_LOWER = _rgb("#141418", "#2a3450", "#4a4a50", "#3a2c22", "#6a6a6e", "#223a5a", "#5a4a3a")
_STREET_UPPER = _rgb("#f4f4f4", "#101010", "#e02828", "#2858e0", "#28c050", "#f0e020", "#f090c0", "#a060e0",
                     "#00b0b0", "#ff8000", "#806040", "#909090", "#30305a", "#c0a080")
_STREET_LOWER = _rgb("#202020", "#3050a0", "#909090", "#d0c0a0", "#f0f0f0", "#a03030", "#405030", "#303a60")

DOMAINS: dict[str, DomainStyle] = {
    # Market-1501 was filmed on a campus in summer: light clothing, shorts and skirts, bright outdoor scenes.
    "market": DomainStyle(
        name="market", upper_palette=_SUMMER_UPPER, upper_weights=(3, 2, 2, 1.2, 1.5, 1, 1, 1, 1, 0.8, 0.6, 0.8),
        lower_palette=_SUMMER_LOWER, lower_weights=(3, 3, 1.5, 1.5, 1, 1, 0.8, 0.5),
        pattern_p=(0.40, 0.17, 0.13, 0.12, 0.18), long_sleeve_p=0.28, lower_kind_p=(0.55, 0.30, 0.15),
        hat_p=0.10, bag_p=0.35, backpack_p=0.25, long_hair_p=0.35, scale=(0.86, 1.0),
        stretch=(1.15, 1.5), brightness=1.05,
        indoor_fraction=0.0, outdoor_wall=_rgb("#a8a294", "#8c9a78", "#b4aa98", "#6e8a5c", "#9a9ca0"),
        outdoor_ground=_rgb("#9c9890", "#a89e8a", "#8a8e88", "#b0aca0"),
        indoor_wall=_rgb("#d0ccc0"), indoor_ground=_rgb("#b0aaa0"),
    ),
    # MSMT17 was filmed in winter (dark coats, trousers, backpacks, hats), 12 outdoor + 3 indoor cameras,
    # morning/noon/afternoon lighting, people usually smaller in their box.
    "msmt": DomainStyle(
        name="msmt", upper_palette=_WINTER_UPPER, upper_weights=(2.5, 1.5, 1.5, 1.5, 1, 1, 1, 0.8, 1.2, 0.8, 0.8, 0.6),
        lower_palette=_WINTER_LOWER, lower_weights=(4, 3, 2, 1, 1, 1, 0.6),
        pattern_p=(0.55, 0.12, 0.10, 0.10, 0.13), long_sleeve_p=0.92, lower_kind_p=(0.88, 0.02, 0.10),
        hat_p=0.25, bag_p=0.30, backpack_p=0.40, long_hair_p=0.30, scale=(0.72, 0.92),
        stretch=(1.0, 1.3), brightness=0.85,
        indoor_fraction=0.2, outdoor_wall=_rgb("#7a7c80", "#8a8478", "#6a7068", "#9094a0", "#70685c"),
        outdoor_ground=_rgb("#6c6c70", "#80807c", "#5c5e60", "#8a8680"),
        indoor_wall=_rgb("#d8ceb0", "#c8c4bc", "#e0d8c4"), indoor_ground=_rgb("#b8a88a", "#a0a0a4", "#c4b8a0"),
        time_of_day=True,
    ),
    # Other street styles that only the unlabeled pool contains (LUPerson comes from street videos world-wide).
    "street": DomainStyle(
        name="street", upper_palette=_STREET_UPPER, upper_weights=(1,) * 14,
        lower_palette=_STREET_LOWER, lower_weights=(2, 2, 1, 1, 1, 1, 1, 1),
        pattern_p=(0.35, 0.18, 0.15, 0.15, 0.17), long_sleeve_p=0.55, lower_kind_p=(0.6, 0.2, 0.2),
        hat_p=0.2, bag_p=0.35, backpack_p=0.3, long_hair_p=0.4, scale=(0.62, 1.0),
        stretch=(0.95, 1.45), brightness=0.95,
        indoor_fraction=0.3, outdoor_wall=_rgb("#b06a50", "#d0c8b0", "#507088", "#8a7a9a", "#606a50"),
        outdoor_ground=_rgb("#50504c", "#8a8070", "#707a70"),
        indoor_wall=_rgb("#e8e0d0", "#b0c0c8"), indoor_ground=_rgb("#9a8a78", "#707070"),
        occlusion_p=0.3,
    ),
}

_SKIN = _rgb("#f2d2b8", "#e0b494", "#c89670", "#a0704c", "#6e4a32", "#4a3022")
_SKIN_W = np.array([2, 3, 2.5, 1.5, 1, 0.6])
_HAIR = _rgb("#141210", "#2e2018", "#5a3c24", "#9a7a4a", "#c8b080", "#8a8a8a", "#7a2a1a")
_HAIR_W = np.array([4, 3, 1.6, 0.7, 0.5, 0.4, 0.3])
_SHOES = _rgb("#141414", "#f0f0f0", "#5a3a22", "#3a4a6a", "#8a8a8a", "#b02828")
_SHOES_W = np.array([4, 2.5, 1.5, 1, 1, 0.4])
_ACCESSORY = _rgb("#1a1a1a", "#5a3a20", "#8a2020", "#203a70", "#c8b48c", "#3a5a3a", "#a0a0a0", "#d06a20")


# --------------------------------------------------------------------------------------------------------------
# Identities and image specs
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Identity:
    """What makes a person recognisable. Colours are RGB tuples in [0, 1]."""

    upper_color: tuple[float, float, float]
    pattern: str  # one of PATTERNS
    pattern_color: tuple[float, float, float]
    stripe_width: float  # stripe period / person height
    logo_shape: str
    long_sleeves: bool
    lower_kind: str  # one of LOWER_KINDS
    lower_color: tuple[float, float, float]
    skin: tuple[float, float, float]
    hair_color: tuple[float, float, float]
    long_hair: bool
    hat: bool
    hat_color: tuple[float, float, float]
    bag: str  # "none" | "left" | "right" (the person's side the bag hangs on)
    bag_color: tuple[float, float, float]
    backpack: bool
    backpack_color: tuple[float, float, float]
    shoe_color: tuple[float, float, float]
    build: float  # width factor
    height: float  # height factor (how much of the box the person fills)


def _pick(rng: np.random.Generator, palette: np.ndarray, weights, jitter: float) -> tuple[float, float, float]:
    w = np.asarray(weights, dtype=np.float64)
    color = palette[rng.choice(len(palette), p=w / w.sum())] + rng.normal(0.0, jitter, 3)
    return tuple(float(c) for c in np.clip(color, 0.02, 0.98))


def sample_identity(domain: DomainStyle, rng: np.random.Generator) -> Identity:
    """Draw one person's attributes from ``domain``'s statistics.

    Colours come from small palettes with a little per-identity jitter, so many identities share a colour and
    several attributes: telling them apart needs the combination, not one cue.
    """
    pattern = PATTERNS[rng.choice(len(PATTERNS), p=np.asarray(domain.pattern_p) / sum(domain.pattern_p))]
    upper = _pick(rng, domain.upper_palette, domain.upper_weights, 0.035)
    # the pattern colour must contrast with the base colour, or the pattern is invisible
    pattern_color = upper
    for _ in range(8):
        pattern_color = _pick(rng, _STREET_UPPER, (1,) * len(_STREET_UPPER), 0.03)
        if np.abs(np.subtract(pattern_color, upper)).sum() > 0.6:
            break
    bag = ("none", "left", "right")[0 if rng.random() >= domain.bag_p else 1 + int(rng.integers(2))]
    return Identity(
        upper_color=upper,
        pattern=pattern,
        pattern_color=pattern_color,
        stripe_width=float(rng.choice([0.035, 0.05, 0.07])),
        logo_shape=LOGO_SHAPES[int(rng.integers(len(LOGO_SHAPES)))],
        long_sleeves=bool(rng.random() < domain.long_sleeve_p),
        lower_kind=LOWER_KINDS[rng.choice(3, p=np.asarray(domain.lower_kind_p) / sum(domain.lower_kind_p))],
        lower_color=_pick(rng, domain.lower_palette, domain.lower_weights, 0.035),
        skin=_pick(rng, _SKIN, _SKIN_W, 0.02),
        hair_color=_pick(rng, _HAIR, _HAIR_W, 0.02),
        long_hair=bool(rng.random() < domain.long_hair_p),
        hat=bool(rng.random() < domain.hat_p),
        hat_color=_pick(rng, _ACCESSORY, (1,) * len(_ACCESSORY), 0.03),
        bag=bag,
        bag_color=_pick(rng, _ACCESSORY, (1,) * len(_ACCESSORY), 0.03),
        backpack=bool(rng.random() < domain.backpack_p),
        backpack_color=_pick(rng, _ACCESSORY, (1,) * len(_ACCESSORY), 0.03),
        shoe_color=_pick(rng, _SHOES, _SHOES_W, 0.02),
        build=float(rng.uniform(0.88, 1.14)),
        height=float(rng.uniform(0.95, 1.02)),
    )


@dataclass(frozen=True)
class ImageSpec:
    """Everything needed to render one image, independent of the process that renders it.

    ``kind``: ``person`` | ``distractor`` (a mis-cropped or partial person, Market pid 0) | ``junk`` (Market
    pid -1: background or a useless crop) | ``background`` | ``vehicle`` | ``clutter`` (off-domain pool images).
    ``scenes``: the namespace of the scene set and camera tendencies (two worlds with the same domain style but a
    different namespace share the look, not the exact scenes). ``view``: the walking direction of the pass this
    image belongs to (kept with probability 0.7). ``seed``: the image's own entropy.
    """

    rel_path: str
    kind: str
    domain: str
    scenes: str
    camera: int  # 0-based camera index within ``scenes``
    num_cameras: int
    seed: tuple[int, ...]
    identity: Identity | None = None
    view: str | None = None
    time_of_day: str = ""


# --------------------------------------------------------------------------------------------------------------
# A canvas of soft-edged primitives
# --------------------------------------------------------------------------------------------------------------
class Canvas:
    """An RGB float image plus a person-coverage mask; shapes are painted back to front.

    ``mask`` is the visible person's coverage in [0, 1]: person shapes raise it, other shapes (``person=False``)
    painted over it lower it by their own coverage.

    ``stretch`` > 1 draws horizontally stretched shapes (coordinates are in unstretched units, ``self.w`` is the
    unstretched width): a detector box narrower than 1:2 is stretched like this when resized to 128x64.
    """

    def __init__(self, background: np.ndarray, stretch: float = 1.0):
        self.img = background.astype(np.float32, copy=True)
        self.h, self.cols = self.img.shape[:2]
        self.stretch = float(stretch)
        self.w = self.cols / self.stretch
        self.mask = np.zeros((self.h, self.cols), np.float32)
        self._ys = np.arange(self.h, dtype=np.float32) + 0.5
        self._xs = (np.arange(self.cols, dtype=np.float32) + 0.5) / np.float32(self.stretch)

    def _window(self, x0: float, x1: float, y0: float, y1: float):
        s = self.stretch
        c0, c1 = max(0, int(math.floor(x0 * s - 1))), min(self.cols, int(math.ceil(x1 * s + 1)))
        r0, r1 = max(0, int(math.floor(y0 - 1))), min(self.h, int(math.ceil(y1 + 1)))
        if c0 >= c1 or r0 >= r1:
            return None
        return (slice(r0, r1), slice(c0, c1)), self._ys[r0:r1, None], self._xs[None, c0:c1]

    def paint(self, win, dist: np.ndarray, color, *, person: bool = True, opacity: float = 1.0) -> np.ndarray:
        """Composite ``color`` (RGB or a per-pixel array) where the signed distance ``dist`` < 0."""
        sl = win[0]
        alpha = np.minimum(np.maximum(0.5 - dist, 0.0), 1.0)
        if opacity != 1.0:
            alpha *= opacity
        region = self.img[sl]
        col = np.asarray(color, np.float32)
        region += alpha[..., None] * (col - region)
        if person:
            np.maximum(self.mask[sl], alpha, out=self.mask[sl])
        else:  # drawn in front of the person (an occluder): hides it
            self.mask[sl] *= 1.0 - alpha
        return alpha

    # --- primitives: each returns (window, signed distance in pixels) or None when off-canvas ---------------
    def capsule(self, ax, ay, bx, by, r):
        win = self._window(min(ax, bx) - r, max(ax, bx) + r, min(ay, by) - r, max(ay, by) + r)
        if win is None:
            return None
        _, ys, xs = win
        px, py = xs - ax, ys - ay
        dx, dy = bx - ax, by - ay
        denom = dx * dx + dy * dy
        t = np.minimum(np.maximum((px * dx + py * dy) * (1.0 / denom), 0.0), 1.0) if denom > 1e-9 else 0.0 * (px + py)
        d = np.sqrt((px - t * dx) ** 2 + (py - t * dy) ** 2) - r
        return win, d

    def ellipse(self, cx, cy, rx, ry, *, y_max=None, x_min=None, x_max=None):
        win = self._window(cx - rx, cx + rx, cy - ry, cy + ry)
        if win is None:
            return None
        _, ys, xs = win
        d = (np.sqrt(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2) - 1.0) * min(rx, ry)
        if y_max is not None:
            d = np.maximum(d, ys - y_max)
        if x_min is not None:
            d = np.maximum(d, x_min - xs)
        if x_max is not None:
            d = np.maximum(d, xs - x_max)
        return win, d

    def trapezoid(self, cx, y0, y1, half_top, half_bottom, *, skew=0.0):
        """Vertical trapezoid between rows y0 < y1; ``skew`` shifts the bottom edge horizontally."""
        hw = max(half_top, half_bottom)
        win = self._window(cx - hw - abs(skew), cx + hw + abs(skew), y0, y1)
        if win is None:
            return None
        _, ys, xs = win
        t = np.clip((ys - y0) / max(y1 - y0, 1e-6), 0.0, 1.0)
        centre = cx + skew * t
        half = half_top + (half_bottom - half_top) * t
        d = np.maximum(np.abs(xs - centre) - half, np.maximum(y0 - ys, ys - y1))
        return win, d

    def box(self, cx, cy, hx, hy, radius=0.0):
        win = self._window(cx - hx, cx + hx, cy - hy, cy + hy)
        if win is None:
            return None
        _, ys, xs = win
        qx = np.abs(xs - cx) - (hx - radius)
        qy = np.abs(ys - cy) - (hy - radius)
        d = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2) + np.minimum(np.maximum(qx, qy), 0) - radius
        return win, d

    def draw(self, shape, color, **kw) -> None:
        if shape is not None:
            self.paint(shape[0], shape[1], color, **kw)


# --------------------------------------------------------------------------------------------------------------
# Scenes (shared per domain, blurred, low contrast) and camera tendencies
# --------------------------------------------------------------------------------------------------------------
def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: tuple[int, int]) -> np.ndarray:
    grid = rng.normal(0, 1, (cells[0], cells[1])).astype(np.float32)
    img = Image.fromarray(grid).resize((w, h), Image.BILINEAR)
    return np.asarray(img, np.float32)


def _is_indoor(style: DomainStyle, camera: int, num_cameras: int) -> bool:
    n_in = int(round(style.indoor_fraction * num_cameras))
    return camera >= num_cameras - n_in


@functools.lru_cache(maxsize=256)
def _scene(domain: str, namespace: str, world_seed: int, scene_id: int, indoor: bool, h: int, w: int) -> np.ndarray:
    """One background scene, larger than a crop (crops are cut from it at random offsets)."""
    style = DOMAINS[domain]
    rng = np.random.default_rng([world_seed, stable_hash(namespace), stable_hash("scene"), scene_id])
    sh, sw = int(h * 1.35), int(w * 2.4)
    ys = (np.arange(sh, dtype=np.float32)[:, None] + 0.5) / sh
    xs = (np.arange(sw, dtype=np.float32)[None, :] + 0.5) / sw
    walls = style.indoor_wall if indoor else style.outdoor_wall
    grounds = style.indoor_ground if indoor else style.outdoor_ground
    wall = walls[rng.integers(len(walls))] * rng.uniform(0.85, 1.12)
    ground = grounds[rng.integers(len(grounds))] * rng.uniform(0.9, 1.1)
    horizon = rng.uniform(0.45, 0.72)
    t = np.clip((ys - horizon) / 0.03 + 0.5, 0, 1)  # soft horizon
    img = wall[None, None, :] * (1 - t[..., None]) + ground[None, None, :] * t[..., None]
    img = np.broadcast_to(img, (sh, sw, 3)).copy()
    # vertical structures: pillars / tree trunks / doors
    for _ in range(int(rng.integers(2, 6))):
        x0 = rng.uniform(0, 1)
        width = rng.uniform(0.03, 0.15)
        top = rng.uniform(0.0, horizon - 0.1)
        col = walls[rng.integers(len(walls))] * rng.uniform(0.6, 1.25)
        m = ((np.abs(xs - x0) < width / 2) & (ys > top) & (ys < horizon + 0.02)).astype(np.float32)
        img += m[..., None] * (col - img)
    if not indoor:  # foliage blobs
        for _ in range(int(rng.integers(0, 4))):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0.0, horizon), rng.uniform(0.08, 0.2)
            m = np.clip(1.5 - np.sqrt(((xs - cx) / r * 2.2) ** 2 + ((ys - cy) / r) ** 2), 0, 1)
            img += m[..., None] * (np.array([0.32, 0.42, 0.26], np.float32) * rng.uniform(0.8, 1.2) - img)
    else:  # floor tiles
        tiles = (np.sin(xs * rng.uniform(20, 40)) * np.sin((ys - horizon) * 40) > 0) & (ys > horizon)
        img *= 1.0 - 0.06 * tiles[..., None]
    img += 0.05 * _smooth_noise(rng, sh, sw, (4, 6))[..., None]
    # low contrast: pull towards the mean; then a strong blur (out of focus, as behind a pedestrian)
    mean = img.mean(axis=(0, 1), keepdims=True)
    img = mean + (img - mean) * rng.uniform(0.35, 0.55)
    pil = Image.fromarray(np.clip(img * 255, 0, 255).astype(np.uint8))
    pil = pil.filter(ImageFilter.GaussianBlur(radius=max(1.0, 2.2 * h / 128)))
    return np.asarray(pil, np.float32) / 255.0


@functools.lru_cache(maxsize=1024)
def _camera_tendency(namespace: str, world_seed: int, camera: int) -> tuple[np.ndarray, float, float]:
    """Per-camera mean colour gains, mean log-brightness and blur (in pixels at 128 px height)."""
    rng = np.random.default_rng([world_seed, stable_hash(namespace), stable_hash("camera"), camera])
    gains = np.exp(rng.normal(0, 0.05, 3)).astype(np.float32)
    return gains, float(rng.normal(0, 0.08)), float(rng.uniform(0.0, 0.5))


_TIME_OF_DAY_LIGHT = {  # (gains, brightness factor)
    "morning": (np.array([0.93, 0.98, 1.08], np.float32), 0.88),
    "noon": (np.array([1.02, 1.01, 0.98], np.float32), 1.12),
    "afternoon": (np.array([1.09, 1.0, 0.88], np.float32), 0.97),
}


def _background(spec: ImageSpec, style: DomainStyle, rng: np.random.Generator, world_seed: int,
                h: int, w: int) -> np.ndarray:
    """A ``h`` × ``w`` window of one of the scenes this camera sees."""
    n_scenes = style.scenes_per_camera
    if spec.camera >= 0 and rng.random() < style.own_scene_p:
        camera = spec.camera
    else:  # a scene of any camera of the domain: cameras share part of their look
        camera = int(rng.integers(max(spec.num_cameras, 1)))
    scene_id = camera * n_scenes + int(rng.integers(n_scenes))
    indoor = _is_indoor(style, camera, max(spec.num_cameras, 1))
    scene = _scene(style.name, spec.scenes, world_seed, scene_id, indoor, h, w)
    y0 = int(rng.integers(scene.shape[0] - h + 1))
    x0 = int(rng.integers(scene.shape[1] - w + 1))
    crop = scene[y0:y0 + h, x0:x0 + w]
    return crop[:, ::-1] if rng.random() < 0.5 else crop


# --------------------------------------------------------------------------------------------------------------
# The person
# --------------------------------------------------------------------------------------------------------------
def _pattern_color(ident: Identity, win, cx: float, top: float, hp: float, view: str) -> np.ndarray | tuple:
    """Per-pixel clothing colour of the upper garment inside ``win`` (stripes/checks; plain otherwise)."""
    if ident.pattern in ("plain", "logo"):
        return ident.upper_color
    _, ys, xs = win
    period = ident.stripe_width * hp
    compress = 0.55 if view in ("left", "right") else 1.0
    sharp = 3.0
    hs = np.clip(sharp * np.sin(2 * np.pi * (ys - top) / period), -1, 1) * 0.5 + 0.5
    vs = np.clip(sharp * np.sin(2 * np.pi * (xs - cx) / (period * compress)), -1, 1) * 0.5 + 0.5
    if ident.pattern == "hstripes":
        m = hs * np.ones_like(vs)
    elif ident.pattern == "vstripes":
        m = vs * np.ones_like(hs)
    else:  # checks: the two stripe sets XOR-ed (a checkerboard)
        m = hs * (1 - vs) + vs * (1 - hs)
    base = np.asarray(ident.upper_color, np.float32)
    pat = np.asarray(ident.pattern_color, np.float32)
    return base + m[..., None] * (pat - base)


def _shade(c, f: float) -> tuple[float, float, float]:
    return tuple(float(v) * f for v in c)


def draw_person(cv: Canvas, ident: Identity, view: str, phase: float, cx: float, top: float, hp: float) -> None:
    """Paint ``ident`` walking with gait ``phase`` (radians), seen from ``view``, head top at ``top``, height ``hp``.

    Geometry in units of the person's height (``hp`` pixels): head 0–0.14, shoulders 0.17, hips 0.50, knees
    0.71, ankles 0.92. Which image side a bag hangs on follows the view: the person's right is the image's left
    from the front, the image's right from the back; in profile it shows only when that side faces the camera.
    """
    u = hp
    bw = ident.build
    side = view in ("left", "right")
    d = (-1.0 if view == "left" else 1.0) if side else 0.0  # facing direction in profile
    X = lambda a: cx + a * u  # noqa: E731 - short coordinate helpers keep the geometry readable
    Y = lambda v: top + v * u  # noqa: E731
    skin, upper, lower = ident.skin, ident.upper_color, ident.lower_color
    s = math.sin(phase)
    # the person's right side on the image: -1 (left) seen from the front, +1 from the back
    right_x = -1.0 if view == "front" else 1.0

    # ---- things behind the body -----------------------------------------------------------------------------
    if ident.long_hair and view == "front":
        cv.draw(cv.ellipse(X(0), Y(0.13), 0.068 * u, 0.12 * u), ident.hair_color)
    if ident.backpack and side:
        cv.draw(cv.box(X(-d * 0.105 * bw), Y(0.31), 0.05 * u, 0.11 * u, 0.02 * u), ident.backpack_color)
    bag_visible_front = False
    if ident.bag != "none":
        if side:
            near = (ident.bag == "left") == (d > 0)  # walking right shows the person's left side
            if not near:  # hangs on the far side: only its edge shows behind the hips
                cv.draw(cv.box(X(-d * 0.075), Y(0.47), 0.05 * u, 0.05 * u, 0.01 * u), _shade(ident.bag_color, 0.8))
            bag_visible_front = near
        else:
            bag_visible_front = True

    # ---- legs and lower garment ---------------------------------------------------------------------------------
    def leg(sign: float, swing: float, shade: float):
        if side:
            hip = (X(0.0), Y(0.50))
            th = 0.34 * swing
            knee = (hip[0] + d * math.sin(th) * 0.21 * u, hip[1] + math.cos(th) * 0.21 * u)
            sh_a = th - 0.35 * max(0.0, -swing)  # the trailing leg bends at the knee
            ankle = (knee[0] + d * math.sin(sh_a) * 0.21 * u, knee[1] + math.cos(sh_a) * 0.21 * u)
            foot = (ankle[0] + d * 0.03 * u, ankle[1] + 0.025 * u)
        else:
            hip = (X(sign * 0.052 * bw), Y(0.50))
            knee = (X(sign * 0.056 * bw), Y(0.71 - 0.01 * swing))
            ankle = (X(sign * 0.058 * bw), Y(0.925 - 0.025 * max(0.0, swing)))
            foot = (ankle[0], ankle[1] + 0.028 * u)
        return hip, knee, ankle, foot, shade

    if side:
        legs = [leg(0, -s, 0.78), leg(0, s, 1.0)]  # far leg first
    else:
        legs = [leg(-1, s, 1.0), leg(1, -s, 1.0)]
    kind = ident.lower_kind
    for hip, knee, ankle, foot, sh in legs:
        r_thigh, r_shin = 0.046 * bw * u, 0.036 * bw * u
        fx = 0.046 * u if side else 0.034 * u
        cv.draw(cv.ellipse(foot[0], foot[1], fx, 0.022 * u), _shade(ident.shoe_color, sh))
        leg_col = lower if kind == "trousers" else skin
        extra = 0.006 * u if kind == "trousers" else 0.0
        cv.draw(cv.capsule(*knee, *ankle, r_shin + extra), _shade(leg_col, sh))
        cv.draw(cv.capsule(*hip, *knee, r_thigh + extra), _shade(leg_col, sh))
        if kind == "shorts":
            mid = (hip[0] + 0.62 * (knee[0] - hip[0]), hip[1] + 0.62 * (knee[1] - hip[1]))
            cv.draw(cv.capsule(*hip, *mid, r_thigh + 0.01 * u), _shade(lower, sh))
    pelvis_half = (0.065 if side else 0.1) * bw * u
    if kind == "skirt":
        flare = 0.10 if side else 0.135
        cv.draw(cv.trapezoid(X(0), Y(0.46), Y(0.67), pelvis_half, flare * bw * u), lower)
    else:
        cv.draw(cv.trapezoid(X(0), Y(0.45), Y(0.56), pelvis_half, pelvis_half * 1.02), lower)

    # ---- arms (far arm behind the torso in profile) -------------------------------------------------------------
    def arm(sign: float, swing: float):
        if side:
            sh_pt = (X(0.0), Y(0.195))
            a = 0.5 * swing
            elbow = (sh_pt[0] + d * math.sin(a) * 0.155 * u, sh_pt[1] + math.cos(a) * 0.155 * u)
            a2 = a + 0.25 * abs(swing) + 0.1
            hand = (elbow[0] + d * math.sin(a2) * 0.145 * u, elbow[1] + math.cos(a2) * 0.145 * u)
        else:
            sh_pt = (X(sign * 0.118 * bw), Y(0.195))
            elbow = (X(sign * 0.142 * bw), Y(0.345 - 0.012 * swing))
            hand = (X(sign * 0.15 * bw), Y(0.485 - 0.03 * max(0.0, swing)))
        return sh_pt, elbow, hand

    def draw_arm(sh_pt, elbow, hand, shade: float):
        r1, r2 = 0.031 * bw * u, 0.026 * bw * u
        cv.draw(cv.ellipse(hand[0], hand[1], 0.026 * u, 0.03 * u), _shade(skin, shade))
        if ident.long_sleeves:
            cv.draw(cv.capsule(*elbow, *hand, r2 + 0.004 * u), _shade(upper, shade))
        else:
            cv.draw(cv.capsule(*elbow, *hand, r2), _shade(skin, shade))
        up_end = elbow if ident.long_sleeves else (sh_pt[0] + 0.55 * (elbow[0] - sh_pt[0]),
                                                   sh_pt[1] + 0.55 * (elbow[1] - sh_pt[1]))
        if not ident.long_sleeves:
            cv.draw(cv.capsule(*sh_pt, *elbow, r1 * 0.9), _shade(skin, shade))
        shape = cv.capsule(*sh_pt, *up_end, r1 + 0.004 * u)
        if shape is not None:
            col = _pattern_color(ident, shape[0], cx, top, hp, view)
            cv.paint(shape[0], shape[1], np.asarray(col, np.float32) * shade)

    arms = [arm(0, s), arm(0, -s)] if side else [arm(-1, -s), arm(1, s)]
    if side:
        draw_arm(*arms[0], 0.78)

    # ---- torso (upper garment with its pattern), neck ---------------------------------------------------------
    cv.draw(cv.capsule(X(0), Y(0.11), X(0), Y(0.18), 0.026 * u), skin)
    half_top = (0.075 if side else 0.125) * bw * u
    half_bottom = (0.07 if side else 0.103) * bw * u
    shape = cv.trapezoid(X(d * 0.005), Y(0.165), Y(0.505), half_top, half_bottom)
    if shape is not None:
        cv.paint(shape[0], shape[1], _pattern_color(ident, shape[0], cx, top, hp, view))
    shoulders = cv.capsule(X(-0.085 * bw if not side else -0.02), Y(0.19), X(0.085 * bw if not side else 0.02),
                           Y(0.19), 0.035 * u)
    if shoulders is not None:
        cv.paint(shoulders[0], shoulders[1], _pattern_color(ident, shoulders[0], cx, top, hp, view))
    if ident.pattern == "logo" and view == "front":
        lx, ly, r = X(0.0), Y(0.28), 0.042 * u
        logo = {
            "circle": lambda: cv.ellipse(lx, ly, r, r),
            "square": lambda: cv.box(lx, ly, r * 0.9, r * 0.9),
            "diamond": lambda: cv.capsule(lx, ly - r, lx, ly + r, r * 0.35),
            "bar": lambda: cv.box(lx, ly, r * 1.4, r * 0.45),
        }[ident.logo_shape]()
        cv.draw(logo, ident.pattern_color)
    if ident.backpack and view == "back":
        cv.draw(cv.box(X(0), Y(0.31), 0.095 * bw * u, 0.115 * u, 0.025 * u), ident.backpack_color)
        cv.draw(cv.box(X(0), Y(0.36), 0.07 * bw * u, 0.035 * u, 0.01 * u), _shade(ident.backpack_color, 0.8))
    if ident.backpack and view == "front":  # only the straps show from the front
        for sg in (-1, 1):
            cv.draw(cv.capsule(X(sg * 0.07 * bw), Y(0.17), X(sg * 0.075 * bw), Y(0.37), 0.013 * u),
                    _shade(ident.backpack_color, 0.85))

    # ---- shoulder bag with its strap across the body ------------------------------------------------------------
    if ident.bag != "none" and bag_visible_front:
        if side:
            bx = X(d * 0.02)
            cv.draw(cv.capsule(X(0.0), Y(0.17), bx, Y(0.43), 0.009 * u), _shade(ident.bag_color, 0.9))
        else:
            sx = right_x if ident.bag == "right" else -right_x
            bx = X(sx * 0.165 * bw)
            cv.draw(cv.capsule(X(-sx * 0.09 * bw), Y(0.175), bx, Y(0.43), 0.009 * u), _shade(ident.bag_color, 0.9))
        cv.draw(cv.box(bx, Y(0.475), 0.052 * u, 0.048 * u, 0.012 * u), ident.bag_color)

    # ---- arms in front ------------------------------------------------------------------------------------------
    if side:
        draw_arm(*arms[1], 1.0)
    else:
        draw_arm(*arms[0], 0.95)
        draw_arm(*arms[1], 0.95)

    # ---- head, hair, hat -----------------------------------------------------------------------------------------
    hx, hy, hrx, hry = X(d * 0.012), Y(0.078), 0.047 * u, 0.062 * u
    if view == "back":
        cv.draw(cv.ellipse(hx, hy, hrx, hry), skin)
        cv.draw(cv.ellipse(hx, hy - 0.004 * u, hrx * 1.06, hry * 1.0, y_max=Y(0.125)), ident.hair_color)
        if ident.long_hair:
            cv.draw(cv.trapezoid(hx, Y(0.07), Y(0.25), 0.05 * u, 0.062 * u), ident.hair_color)
    else:
        cv.draw(cv.ellipse(hx, hy, hrx, hry), skin)
        if side:
            # hair covers the back half of the head and its top
            back_edge = dict(x_max=hx + 0.012 * u) if d > 0 else dict(x_min=hx - 0.012 * u)
            cv.draw(cv.ellipse(hx - d * 0.006 * u, hy - 0.006 * u, hrx * 1.05, hry * 1.02, **back_edge),
                    ident.hair_color)
            cv.draw(cv.ellipse(hx, hy - 0.01 * u, hrx * 1.04, hry, y_max=Y(0.05)), ident.hair_color)
            if ident.long_hair:
                cv.draw(cv.capsule(hx - d * 0.035 * u, Y(0.08), hx - d * 0.04 * u, Y(0.24), 0.028 * u),
                        ident.hair_color)
            cv.draw(cv.ellipse(hx + d * 0.025 * u, Y(0.07), 0.007 * u, 0.006 * u), (0.1, 0.08, 0.07))
        else:
            cv.draw(cv.ellipse(hx, hy - 0.008 * u, hrx * 1.05, hry * 0.98, y_max=Y(0.045)), ident.hair_color)
            for sg in (-1, 1):  # eyes
                cv.draw(cv.ellipse(hx + sg * 0.018 * u, Y(0.072), 0.0065 * u, 0.005 * u), (0.12, 0.09, 0.08))
    if ident.hat:
        cv.draw(cv.ellipse(hx, Y(0.045), hrx * 1.12, 0.04 * u, y_max=Y(0.05)), ident.hat_color)
        brim_x = hx + d * 0.035 * u
        cv.draw(cv.ellipse(brim_x, Y(0.05), (0.05 if side else 0.058) * u, 0.011 * u), _shade(ident.hat_color, 0.85))


# --------------------------------------------------------------------------------------------------------------
# Off-domain content
# --------------------------------------------------------------------------------------------------------------
_CAR = _rgb("#c8c8cc", "#1a1a1e", "#8a1a1a", "#1a3a7a", "#e8e8e4", "#5a5e62", "#2a5a3a", "#d0b040")


def _draw_vehicle(cv: Canvas, rng: np.random.Generator) -> None:
    h, w = cv.h, cv.w
    body = _CAR[rng.integers(len(_CAR))] * rng.uniform(0.85, 1.1)
    if rng.random() < 0.5:  # the front of a car, seen head-on
        cy = h * rng.uniform(0.55, 0.75)
        cv.draw(cv.box(w / 2, cy, w * rng.uniform(0.45, 0.6), h * 0.2, 0.05 * w), body)
        cv.draw(cv.box(w / 2, cy - h * 0.2, w * 0.4, h * 0.09, 0.04 * w), (0.2, 0.25, 0.3))  # windscreen
        for sg in (-1, 1):
            cv.draw(cv.ellipse(w / 2 + sg * w * 0.32, cy + h * 0.02, w * 0.07, h * 0.025), (0.95, 0.93, 0.8))
        cv.draw(cv.box(w / 2, cy + h * 0.09, w * 0.22, h * 0.03), (0.1, 0.1, 0.1))  # grille
        for sg in (-1, 1):
            cv.draw(cv.box(w / 2 + sg * w * 0.38, cy + h * 0.22, w * 0.08, h * 0.05, 0.02 * w), (0.05, 0.05, 0.05))
    else:  # part of a car or bus side
        cy = h * rng.uniform(0.45, 0.7)
        cv.draw(cv.box(w / 2, cy, w * 0.9, h * 0.22, 0.05 * w), body)
        cv.draw(cv.box(w / 2 + w * rng.uniform(-0.3, 0.3), cy - h * 0.17, w * 0.45, h * 0.08, 0.03 * w),
                (0.22, 0.27, 0.32))
        wx = w * rng.uniform(0.1, 0.9)
        cv.draw(cv.ellipse(wx, cy + h * 0.2, w * 0.2, w * 0.2), (0.06, 0.06, 0.06))
        cv.draw(cv.ellipse(wx, cy + h * 0.2, w * 0.09, w * 0.09), (0.6, 0.6, 0.62))


def _draw_clutter(cv: Canvas, rng: np.random.Generator) -> None:
    h, w = cv.h, cv.w
    what = rng.integers(3)
    if what == 0:  # a sign on a pole
        px = w * rng.uniform(0.3, 0.7)
        cv.draw(cv.box(px, h * 0.65, w * 0.04, h * 0.4), (0.45, 0.45, 0.47))
        col = _STREET_UPPER[rng.integers(len(_STREET_UPPER))]
        sy = h * rng.uniform(0.15, 0.4)
        cv.draw(cv.box(px, sy, w * rng.uniform(0.3, 0.45), h * rng.uniform(0.1, 0.18), 0.02 * w), col)
        for k in range(3):  # "text" lines
            cv.draw(cv.box(px, sy - h * 0.06 + k * h * 0.05, w * 0.25, h * 0.012), (0.95, 0.95, 0.95))
    elif what == 1:  # a tree or a bush
        cv.draw(cv.box(w * 0.5, h * 0.8, w * 0.07, h * 0.25), (0.35, 0.25, 0.15))
        for _ in range(5):
            cv.draw(cv.ellipse(w * rng.uniform(0.2, 0.8), h * rng.uniform(0.15, 0.55), w * rng.uniform(0.2, 0.4),
                               h * rng.uniform(0.1, 0.2)), np.array([0.25, 0.45, 0.2]) * rng.uniform(0.7, 1.2))
    else:  # bins, bollards, boxes
        for _ in range(int(rng.integers(2, 5))):
            col = _ACCESSORY[rng.integers(len(_ACCESSORY))] * rng.uniform(0.8, 1.2)
            cv.draw(cv.box(w * rng.uniform(0.1, 0.9), h * rng.uniform(0.4, 0.9), w * rng.uniform(0.1, 0.3),
                           h * rng.uniform(0.05, 0.2), 0.02 * w), col)


def _draw_occluder(cv: Canvas, rng: np.random.Generator, style: DomainStyle) -> None:
    h, w = cv.h, cv.w
    what = rng.integers(3)
    if what == 0:  # a pole in front of the person
        px = w * rng.uniform(0.1, 0.9)
        cv.draw(cv.box(px, h / 2, w * rng.uniform(0.03, 0.07), h), np.full(3, rng.uniform(0.25, 0.6)), person=False)
    elif what == 1:  # the edge of another pedestrian
        sx = -1.0 if rng.random() < 0.5 else 1.0
        cx = w / 2 + sx * w * rng.uniform(0.5, 0.68)
        other = sample_identity(style, rng)
        cv.draw(cv.box(cx, h * 0.55, w * 0.16, h * 0.45, 0.05 * w), other.upper_color, person=False)
        cv.draw(cv.ellipse(cx, h * 0.1, w * 0.11, h * 0.07), other.hair_color, person=False)
    else:  # a car bonnet at the bottom
        col = _CAR[rng.integers(len(_CAR))]
        cv.draw(cv.ellipse(w * rng.uniform(0.3, 0.7), h * rng.uniform(1.0, 1.12), w * 0.9, h * 0.2), col,
                person=False)


# --------------------------------------------------------------------------------------------------------------
# The whole image
# --------------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _noise_field(h: int, w: int) -> np.ndarray:
    """A fixed (2h, 2w, 3) standard-normal field; images take random windows of it (same in every process)."""
    return np.random.default_rng(stable_hash("sensor-noise")).standard_normal((2 * h, 2 * w, 3), dtype=np.float32)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Approximately Gaussian blur of an (H, W, 3) float image by repeated [1, 2, 1] / 4 passes.

    One pass has variance 1/2, so sigma² / (1/2) passes; the fractional part blends one more pass in. Much
    cheaper than PIL's or scipy's Gaussian at this size, and a camera's defocus is not exactly Gaussian anyway.
    """
    passes = 2.0 * sigma * sigma
    out = img
    n = int(passes)
    for i in range(n + 1):
        frac = 1.0 if i < n else passes - n
        if frac <= 1e-3:
            break
        p = np.pad(out, ((1, 1), (1, 1), (0, 0)), mode="edge")
        v = (p[:-2] + 2.0 * p[1:-1] + p[2:]) * 0.25  # vertical pass, (H, W+2, 3)
        b = (v[:, :-2] + 2.0 * v[:, 1:-1] + v[:, 2:]) * 0.25  # horizontal pass
        out = b if frac >= 1.0 else out + np.float32(frac) * (b - out)
    return out


def _compose(spec: ImageSpec, height: int, width: int, world_seed: int
             ) -> tuple[Canvas, np.random.Generator, DomainStyle, bool]:
    """The scene of ``spec`` before the camera: (canvas, the image's generator, its style, whether a person was
    drawn). The generator is left where :func:`render` continues with the camera's draws."""
    rng = np.random.default_rng(list(spec.seed))
    style = DOMAINS[spec.domain]
    # a detector's box narrower than 1:2 is stretched when resized to the dataset's fixed size: draw the
    # person stretched horizontally, so that it fills most of the width and the background is a margin
    stretch = float(rng.uniform(*style.stretch))
    cv = Canvas(_background(spec, style, rng, world_seed, height, width), stretch)
    h, w = cv.h, cv.w  # w: the width in unstretched units, where the shapes are drawn
    kind = spec.kind
    person = kind in ("person", "distractor") or (kind == "junk" and rng.random() < 0.5)
    if person:
        ident = spec.identity if spec.identity is not None else sample_identity(style, rng)
        view = spec.view if (spec.view is not None and rng.random() < 0.7) else VIEWS[int(rng.integers(4))]
        phase = float(rng.uniform(0, 2 * np.pi))
        hp = h * rng.uniform(*style.scale) * ident.height
        cx = w / 2 + w * rng.normal(0, 0.05)
        top = (h - hp) / 2 + h * rng.normal(0, 0.025)
        if kind == "distractor":  # a bad detection: too small, cut in half, or shifted off the centre
            mode = rng.integers(3)
            if mode == 0:
                hp *= rng.uniform(0.45, 0.65)
                top = h - hp - h * rng.uniform(0.0, 0.1)
            elif mode == 1:
                top -= hp * rng.uniform(0.35, 0.5)
            else:
                cx += w * rng.choice([-1, 1]) * rng.uniform(0.35, 0.5)
        elif kind == "junk":  # only legs, or a sliver of a person
            if rng.random() < 0.5:
                top -= hp * rng.uniform(0.5, 0.6)
            else:
                cx += w * rng.choice([-1, 1]) * rng.uniform(0.55, 0.7)
        draw_person(cv, ident, view, phase, cx, top, hp)
        # cylinder shading: people are round
        half = hp * (0.09 if view in ("left", "right") else 0.16)
        darken = 0.22 * np.minimum(((cv._xs - cx) / half) ** 2, 1.5)  # (W,)
        cv.img *= (1.0 - cv.mask * darken[None, :])[..., None]
        if kind == "person" and rng.random() < style.occlusion_p:
            _draw_occluder(cv, rng, style)
    elif kind == "vehicle":
        _draw_vehicle(cv, rng)
    elif kind == "clutter":
        _draw_clutter(cv, rng)
    elif kind not in ("background", "junk"):
        raise ValueError(f"unknown image kind {kind!r}; expected person, distractor, junk, background, vehicle "
                         f"or clutter")
    return cv, rng, style, person


def person_mask(spec: ImageSpec, height: int, width: int, world_seed: int) -> np.ndarray:
    """The visible person's pixel coverage (H, W) float32 in [0, 1] of the image :func:`render` draws for ``spec``.

    Re-draws the scene without the camera (same generator draws, so the same person at the same place): soft
    edges are fractional, occluders drawn in front of the person are cut out, and an image without a person
    (background, vehicle, clutter, half of the junk) gives zeros. The camera's blur is not applied.
    """
    cv, _, _, person = _compose(spec, height, width, world_seed)
    return cv.mask if person else np.zeros_like(cv.mask)


def render(spec: ImageSpec, height: int, width: int, world_seed: int) -> tuple[np.ndarray, int]:
    """Render ``spec`` at ``height`` × ``width``; return (uint8 HxWx3 RGB, JPEG quality to save it with)."""
    cv, rng, style, _ = _compose(spec, height, width, world_seed)
    h = cv.h

    # ---- camera: a per-image draw around the camera's tendency ----------------------------------------------
    gains, log_b, blur = _camera_tendency(spec.scenes, world_seed, spec.camera)
    gains = gains * np.exp(rng.normal(0, 0.05, 3)).astype(np.float32)
    brightness = style.brightness * math.exp(log_b + rng.normal(0, 0.12))
    if spec.time_of_day:
        tod_gain, tod_b = _TIME_OF_DAY_LIGHT[spec.time_of_day]
        gains = gains * tod_gain
        brightness *= tod_b
    # one pass: colour gains x exposure x a soft vertical light gradient (sun from above / ceiling lights)
    grad = 1.0 + rng.normal(0, 0.06) * ((np.arange(h, dtype=np.float32) + 0.5) / h - 0.5)
    factor = (grad[:, None, None] * (gains * (brightness * 255.0))[None, None, :]).astype(np.float32)
    img = cv.img * factor
    sigma = min(1.2, max(0.0, blur + rng.normal(0, 0.25))) * h / 128.0
    if sigma > 0.25:
        img = _blur(img, sigma)
    noise = _noise_field(h, width)  # sensor noise: a random window of a fixed noise field (cheap)
    y0, x0 = int(rng.integers(h + 1)), int(rng.integers(width + 1))
    img += noise[y0:y0 + h, x0:x0 + width] * np.float32(0.012 * 255.0 * (1 if rng.random() < 0.5 else -1))
    img += 0.5
    np.clip(img, 0, 255, out=img)
    out = img.astype(np.uint8)
    quality = int(rng.integers(60, 96))
    return out, quality


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """Baseline JPEG bytes of an RGB uint8 image (deterministic for a given libjpeg)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
