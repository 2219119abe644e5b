"""Procedural urban scenes with co-registered optical, DSM and SAR, in the ISPRS class scheme.

A scene is drawn axis-aligned on a canvas larger than the tile (roads, blocks, houses, car
parks, parks, plazas, trees, cars, clutter), then resampled onto the tile under a random
rotation. Sensors are simulated on the tile grid from the drawn attributes (class, object
height, albedo, base backscatter, analytic slope shading).

The modalities are deliberately complementary, the way real ones are:

* about half of the roofs are grey from the same range as roads and sidewalks, so optical alone
  confuses buildings with pavement while the DSM (and SAR double bounce / shadow) does not;
* trees take their colour from the same distribution as grass with only weak crown shading, so
  height separates them;
* roads and grass are both flat in the DSM (grass is only slightly rougher), where optical is
  easy;
* about 40 % of cars are dark or grey, so optical alone misses many of them;
* optical cast shadows from a random sun direction hint at height without revealing it.

Everything is vectorised numpy: Python loops run over objects and shadow ray steps, never
over pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GENERATOR_VERSION = 2
"""Bump whenever the generated content changes, so stale caches are not reused."""

PIXEL_M = 0.5
"""Ground sampling distance in metres (Potsdam-like)."""

IMPERVIOUS, BUILDING, LOW_VEG, TREE, CAR, CLUTTER = range(6)
CLASSES = ("impervious_surfaces", "building", "low_vegetation", "tree", "car", "clutter")
PALETTE = ((255, 255, 255), (0, 0, 255), (0, 255, 255), (0, 255, 0), (255, 255, 0), (255, 0, 0))


@dataclass(frozen=True)
class SceneStyle:
    """How much each sensor gives away: the two calibration knobs of the generator.

    Both are in [0, 1] and interpolate every affected constant linearly between the original
    (`GENERATOR_VERSION` 1) design at 1.0 and a "clear" design at 0.0. At exactly 1.0 every
    constant is the original one and no random draw is added or removed, so the scenes of the
    original generator come back bit for bit.

    `optical_ambiguity` is how often optical alone cannot tell classes apart: the share of
    roofs painted from the road grey range (0.50 at 1, none at 0) or dark (0.15 at 1, none at 0),
    of dark or grey cars (0.40 at 1, 0.15 at 0), and how similar tree crowns look to lawns
    (at 0 crowns keep their NIR but are 40 % darker in the visible bands, and carry three times
    the crown shading and three times the pixel and clump texture, as crowns do in real IRRG /
    RGB orthophotos).

    `dsm_quality` is how much a matching DSM resolves: blur (0.8 px at 1, 2.5 px at 0), white
    height noise (8 cm at 1, 30 cm at 0), blotchy matching errors a few pixels wide (none at 1,
    60 cm at 0: they bury cars and low clutter), crowns reconstructed too low (full height at 1,
    60 % at 0: image matching on foliage fails) and the roughness that tells lawns from
    pavement (8 cm at 1; at 0 lawns are as smooth as asphalt, 2 cm, so a DSM alone separates
    them only by shape). Below 1 the blotches take extra random draws after the DSM's own, so
    only the DSM and SAR of a scene change with `dsm_quality`, never its layout or optical.
    """

    optical_ambiguity: float = 1.0
    dsm_quality: float = 1.0

    def _clear(self, legacy: float, clear: float) -> float:
        return legacy + (clear - legacy) * (1.0 - self.optical_ambiguity)

    def _poor(self, legacy: float, poor: float) -> float:
        return legacy + (poor - legacy) * (1.0 - self.dsm_quality)

    @property
    def grey_roof_share(self) -> float:
        return self._clear(0.5, 0.0)

    @property
    def grey_or_dark_roof_share(self) -> float:
        return self._clear(0.65, 0.0)

    @property
    def dark_car_share(self) -> float:
        return self._clear(0.4, 0.15)

    @property
    def grey_or_dark_car_share(self) -> float:
        return self._clear(0.6, 0.35)

    @property
    def crown_albedo(self) -> tuple[float, float, float, float]:
        """Per-band (NIR, R, G, B) multiplier on a crown's colour; lawns keep theirs. Clear
        crowns keep their NIR but are darker in the visible bands (a denser canopy absorbs
        more visible light: the deep red of trees in CIR orthophotos), so they neither look
        like lawns nor like shadowed lawns."""
        return (
            1.0,
            self._clear(1.0, 0.6),
            self._clear(1.0, 0.6),
            self._clear(1.0, 0.6),
        )

    @property
    def crown_contrast(self) -> float:
        """Fraction of a sphere's Lambertian contrast that a crown shows."""
        return self._clear(0.22, 0.66)

    @property
    def tree_texture_gain(self) -> float:
        """Multiplier on a crown's pixel and clump texture (foliage, gaps, inner shadows)."""
        return self._clear(1.0, 3.0)

    @property
    def dsm_blur_px(self) -> float:
        return self._poor(0.8, 2.5)

    @property
    def dsm_noise_m(self) -> float:
        return self._poor(0.08, 0.30)

    @property
    def lawn_roughness_m(self) -> float:
        return self._poor(0.08, 0.02)

    @property
    def matching_blotch_m(self) -> float:
        """Amplitude of spatially correlated matching errors (a few pixels across)."""
        return self._poor(0.0, 0.6)

    @property
    def crown_height_scale(self) -> float:
        return self._poor(1.0, 0.6)


LEGACY_STYLE = SceneStyle(1.0, 1.0)
"""The original generator (`GENERATOR_VERSION` 1): optical ambiguous, DSM clean."""

# Per-class texture and roughness (indexed by class id).
_OPT_FINE = np.array([0.035, 0.025, 0.06, 0.09, 0.03, 0.05], np.float32)
_OPT_SMOOTH = np.array([0.05, 0.03, 0.12, 0.08, 0.0, 0.05], np.float32)
_DSM_ROUGH = np.array([0.02, 0.03, 0.08, 0.30, 0.03, 0.10], np.float32)  # metres
_SAR_TEXTURE_DB = np.array([1.0, 1.0, 1.2, 2.5, 1.5, 2.0], np.float32)


# --------------------------------------------------------------------------- small numpy tools


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur over the last two axes with reflect padding."""
    if sigma <= 0:
        return img
    radius = max(1, int(math.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    pad = [(0, 0)] * (img.ndim - 2)
    h, w = img.shape[-2:]
    padded = np.pad(img, pad + [(radius, radius), (0, 0)], mode="reflect")
    out = taps[0] * padded[..., 0:h, :]
    for k in range(1, len(taps)):
        out += taps[k] * padded[..., k : k + h, :]
    padded = np.pad(out, pad + [(0, 0), (radius, radius)], mode="reflect")
    out = taps[0] * padded[..., :, 0:w]
    for k in range(1, len(taps)):
        out += taps[k] * padded[..., :, k : k + w]
    return out.astype(np.float32, copy=False)


def _interp_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Linear interpolation weights mapping `n_in` grid nodes onto `n_out` samples."""
    pos = np.linspace(0, n_in - 1, n_out)
    lo = np.clip(np.floor(pos).astype(int), 0, n_in - 2)
    frac = pos - lo
    mat = np.zeros((n_out, n_in), np.float32)
    mat[np.arange(n_out), lo] = 1 - frac
    mat[np.arange(n_out), lo + 1] = frac
    return mat


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Zero-mean, unit-ish variance noise with features about `size / cells` pixels wide."""
    grid = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    m = _interp_matrix(size, cells + 1)
    field = m @ grid @ m.T
    return field / max(float(field.std()), 1e-6)


def cast_shadow(
    height: np.ndarray, direction: tuple[float, float], rise_per_px: float
) -> np.ndarray:
    """Pixels hidden from a light source whose rays travel along `direction` (y, x).

    A pixel is shadowed when some pixel `s` steps towards the source is higher than the ray
    that reaches it, which climbs `rise_per_px` metres per pixel back towards the source.
    """
    h, w = height.shape
    max_h = float(height.max() - height.min())
    steps = int(math.ceil(max_h / rise_per_px))
    if steps <= 0:
        return np.zeros_like(height, dtype=bool)
    pad = int(math.ceil(steps * max(abs(direction[0]), abs(direction[1])))) + 1
    padded = np.pad(height, pad, mode="edge")
    best = np.full_like(height, -np.inf)
    last = None
    for s in range(1, steps + 1):
        dy = int(round(-s * direction[0]))
        dx = int(round(-s * direction[1]))
        if (dy, dx) == last:
            continue
        last = (dy, dx)
        shifted = padded[pad + dy : pad + dy + h, pad + dx : pad + dx + w]
        np.maximum(best, shifted - s * rise_per_px, out=best)
    return best > height + 0.25


# ------------------------------------------------------------------------------ colour models


def _with_blue(colour: np.ndarray, blue: float) -> np.ndarray:
    """Append the blue reflectance, derived without a random draw (see `generate_scene`)."""
    return np.append(colour.astype(np.float32), np.float32(blue))


def grey_colour(rng: np.random.Generator, lo: float = 0.10, hi: float = 0.40) -> np.ndarray:
    """Asphalt / concrete / grey roof: a flat spectrum with a slight random tint."""
    g = rng.uniform(lo, hi)
    colour = (g * (1 + rng.normal(0, 0.04, 3))).astype(np.float32)
    return _with_blue(colour, float(colour.mean()))


def veg_colour(rng: np.random.Generator) -> np.ndarray:
    """Grass and tree canopies share this distribution on purpose (height separates them)."""
    nir = rng.uniform(0.28, 0.55)
    red = rng.uniform(0.04, 0.11)
    green = rng.uniform(0.08, 0.17)
    if rng.random() < 0.15:  # dry patch
        red += rng.uniform(0.03, 0.08)
        green += rng.uniform(0.02, 0.05)
    # Chlorophyll absorbs blue about as strongly as red.
    return np.array([nir, red, green, 0.7 * red], np.float32)


def roof_colour(
    rng: np.random.Generator, commercial: bool, style: SceneStyle = LEGACY_STYLE
) -> np.ndarray:
    """Grey like roads, dark, or tiles (houses) / white (commercial); `style` sets the shares
    (legacy: half grey, 15 % dark)."""
    u = rng.random()
    if u < style.grey_roof_share:
        return grey_colour(rng)
    if u < style.grey_or_dark_roof_share:
        return grey_colour(rng, 0.05, 0.12)
    if commercial:
        return grey_colour(rng, 0.45, 0.7)
    tile = np.array(
        [rng.uniform(0.25, 0.45), rng.uniform(0.3, 0.55), rng.uniform(0.12, 0.25)], np.float32
    )
    return _with_blue(tile, 0.6 * float(tile[2]))  # fired clay: little blue


def car_colour(rng: np.random.Generator, style: SceneStyle = LEGACY_STYLE) -> np.ndarray:
    """Dark or grey cars (hard for optical; 40 % in the legacy style), white or silver ones,
    the rest saturated paint."""
    u = rng.random()
    if u < style.dark_car_share:
        return grey_colour(rng, 0.03, 0.30)
    if u < style.grey_or_dark_car_share:
        return grey_colour(rng, 0.55, 0.8)
    rgb = rng.uniform(0.05, 0.7, 3)
    rgb[rng.integers(3)] = rng.uniform(0.5, 0.85)
    # Paint pigments: the blue reflectance follows the first (NIR) draw, so a car's visible
    # colour is not predictable from its NIR-R-G appearance alone.
    return _with_blue(rgb, float(rgb[0]))


def clutter_colour(rng: np.random.Generator) -> np.ndarray:
    colour = rng.uniform(0.05, 0.75, 3).astype(np.float32)
    return _with_blue(colour, float(colour[0]))


# ---------------------------------------------------------------------------------- the canvas


@dataclass
class _Canvas:
    """Attribute layers of the axis-aligned scene, plus light directions in canvas axes.

    `view` returns transposed / flipped views sharing memory, so layout code can always assume
    e.g. that a block's long axis is x; the light directions are transformed alongside.
    """

    cls: np.ndarray  # uint8 [S, S]
    height: np.ndarray  # float32 object height above ground, metres
    alb: np.ndarray  # float32 [4, S, S] NIR, R, G, B reflectance
    shade: np.ndarray  # float32 multiplicative optical slope shading
    sar: np.ndarray  # float32 base backscatter, dB
    sun: np.ndarray  # horizontal unit vector towards the sun (y, x)
    sun_elev: float
    look: np.ndarray  # horizontal unit vector towards the radar (y, x)
    incidence: float
    rng: np.random.Generator
    keep_prob: float  # chance that a car / clutter object is kept (1 / imbalance)
    style: SceneStyle = LEGACY_STYLE

    @property
    def shape(self) -> tuple[int, int]:
        return self.cls.shape  # type: ignore[return-value]

    def view(self, transpose: bool = False, flip_y: bool = False, flip_x: bool = False) -> _Canvas:
        cls, height, alb, shade, sar = self.cls, self.height, self.alb, self.shade, self.sar
        sun, look = self.sun.copy(), self.look.copy()
        if transpose:
            cls, height, shade, sar = cls.T, height.T, shade.T, sar.T
            alb = alb.transpose(0, 2, 1)
            sun, look = sun[::-1].copy(), look[::-1].copy()
        if flip_y:
            cls, height, shade, sar, alb = (
                cls[::-1],
                height[::-1],
                shade[::-1],
                sar[::-1],
                alb[:, ::-1],
            )
            sun[0], look[0] = -sun[0], -look[0]
        if flip_x:
            cls, height, shade, sar = cls[:, ::-1], height[:, ::-1], shade[:, ::-1], sar[:, ::-1]
            alb = alb[:, :, ::-1]
            sun[1], look[1] = -sun[1], -look[1]
        return _Canvas(
            cls,
            height,
            alb,
            shade,
            sar,
            sun,
            self.sun_elev,
            look,
            self.incidence,
            self.rng,
            self.keep_prob,
            self.style,
        )

    def box(self, y0: float, y1: float, x0: float, x1: float) -> tuple[slice, slice] | None:
        """Integer slices of a rectangle clipped to the canvas; None when empty."""
        h, w = self.shape
        a, b = max(int(round(y0)), 0), min(int(round(y1)), h)
        c, d = max(int(round(x0)), 0), min(int(round(x1)), w)
        if a >= b or c >= d:
            return None
        return slice(a, b), slice(c, d)

    def rect(
        self,
        y0: float,
        y1: float,
        x0: float,
        x1: float,
        cls: int,
        colour: np.ndarray,
        sar_db: float,
        height: float = 0.0,
    ) -> None:
        """Fill a rectangle with one surface (overwrites what is below)."""
        sl = self.box(y0, y1, x0, x1)
        if sl is None:
            return
        self.cls[sl] = cls
        self.height[sl] = height
        self.alb[(slice(None), *sl)] = colour[:, None, None]
        self.shade[sl] = 1.0
        self.sar[sl] = sar_db

    def disc(
        self,
        cy: float,
        cx: float,
        r: float,
        cls: int,
        colour: np.ndarray,
        sar_db: float,
        height: float,
    ) -> None:
        """Fill a disc with one flat surface (ponds, trampolines, round clutter)."""
        sl = self.box(cy - r, cy + r + 1, cx - r, cx + r + 1)
        if sl is None:
            return
        yy, xx = np.ogrid[sl[0], sl[1]]
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        self.cls[sl][inside] = cls
        self.height[sl][inside] = height
        for b in range(len(colour)):
            self.alb[b][sl][inside] = colour[b]
        self.shade[sl][inside] = 1.0
        self.sar[sl][inside] = sar_db

    # -------------------------------------------------------------------------------- objects

    def _sun_vec(self) -> np.ndarray:
        e = math.radians(self.sun_elev)
        return np.array([self.sun[0] * math.cos(e), self.sun[1] * math.cos(e), math.sin(e)])

    def _look_vec(self) -> np.ndarray:
        t = math.radians(self.incidence)
        return np.array([self.look[0] * math.sin(t), self.look[1] * math.sin(t), math.cos(t)])

    def house(
        self,
        y0: float,
        y1: float,
        x0: float,
        x1: float,
        eave: float,
        ridge: float,
        gabled: bool,
        colour: np.ndarray,
        sar_db: float,
    ) -> None:
        """A building; gabled roofs have their ridge along x and analytic face shading."""
        sl = self.box(y0, y1, x0, x1)
        if sl is None:
            return
        self.rect(y0, y1, x0, x1, BUILDING, colour, sar_db, eave)
        if not gabled:
            return
        yc, half = (y0 + y1 - 1) / 2, max((y1 - y0) / 2, 1.0)
        yy = np.arange(sl[0].start, sl[0].stop, dtype=np.float32)[:, None]
        dist = np.abs(yy - yc) / half
        self.height[sl] = eave + (ridge - eave) * np.clip(1 - dist, 0, 1)
        slope = (ridge - eave) / (half * PIXEL_M)
        sun, look = self._sun_vec(), self._look_vec()
        for sign, rows in ((-1, yy < yc), (1, yy >= yc)):
            # Face with height decreasing away from the ridge: normal leans to `sign` side.
            n = np.array([sign * slope, 0.0, 1.0]) / math.hypot(slope, 1.0)
            shade = float(np.clip(n @ sun / sun[2], 0.25, 1.6))
            cos_loc = max(float(n @ look), 0.05)
            gain_db = float(np.clip(15 * math.log10(cos_loc / look[2]), -8, 5))
            r = rows[:, 0]
            self.shade[sl][r] = shade
            self.sar[sl][r] = sar_db + gain_db

    def tree(self, cy: float, cx: float, r: float, height: float, colour: np.ndarray) -> None:
        """A dome-shaped crown that covers whatever is lower than itself (overhangs roads, cars)."""
        sl = self.box(cy - r, cy + r + 1, cx - r, cx + r + 1)
        if sl is None:
            return
        yy, xx = np.ogrid[sl[0], sl[1]]
        dy, dx = (yy - cy) / r, (xx - cx) / r
        rr = dy**2 + dx**2
        inside = rr <= 1.0
        nz = np.sqrt(np.clip(1 - rr, 0, 1))
        dome = height * (0.55 + 0.45 * nz)
        cover = inside & (dome > self.height[sl])
        if not cover.any():
            return
        sun = self._sun_vec()
        # Crown shading: a fraction of a sphere's Lambertian contrast (a quarter in the legacy
        # style, so crowns look like lawns).
        lam = (dy * sun[0] + dx * sun[1] + nz * sun[2]) / sun[2]
        shade = 1 + self.style.crown_contrast * (np.clip(lam, 0, 1.6) - 1)
        shade = np.broadcast_to(shade, cover.shape)
        dome = np.broadcast_to(dome, cover.shape)
        self.cls[sl][cover] = TREE
        self.height[sl][cover] = dome[cover]
        if self.style.crown_albedo != (1.0, 1.0, 1.0, 1.0):
            colour = colour * np.asarray(self.style.crown_albedo, np.float32)
        for b in range(len(colour)):
            self.alb[b][sl][cover] = colour[b]
        self.shade[sl][cover] = shade[cover]
        self.sar[sl][cover] = -7.5 + self.rng.normal(0, 1.0)

    def car(self, cy: float, cx: float, along_x: bool) -> None:
        """A 9 x 4 px car (kept with probability 1/imbalance; attributes drawn regardless)."""
        rng = self.rng
        colour = car_colour(rng, self.style)
        height = rng.uniform(1.3, 1.7)
        jitter = rng.uniform(-0.6, 0.6, 2)
        point = rng.integers(0, 9), rng.integers(0, 4)
        keep = rng.random() < self.keep_prob
        if not keep:
            return
        ly, lx = (4, 9) if along_x else (9, 4)
        y0, x0 = cy - ly / 2 + jitter[0], cx - lx / 2 + jitter[1]
        self.rect(y0, y0 + ly, x0, x0 + lx, CAR, colour, -3.0, height)
        # Darker windscreen band across the car, and one bright radar point scatterer.
        sl = self.box(y0, y0 + ly, x0, x0 + lx)
        if sl is None:
            return
        if along_x:
            ws = self.box(y0, y0 + ly, x0 + 5, x0 + 6)
            pt = self.box(y0 + point[1], y0 + point[1] + 1, x0 + point[0], x0 + point[0] + 1)
        else:
            ws = self.box(y0 + 5, y0 + 6, x0, x0 + lx)
            pt = self.box(y0 + point[0], y0 + point[0] + 1, x0 + point[1], x0 + point[1] + 1)
        if ws is not None:
            self.alb[(slice(None), *ws)] *= 0.45
        if pt is not None:
            self.sar[pt] = 10.0

    def clutter(self, cy: float, cx: float, scale: float = 1.0) -> None:
        """Box or blob 0-3.5 m high in a random colour (kept with probability 1/imbalance)."""
        rng = self.rng
        kind = rng.random()
        colour = clutter_colour(rng)
        height = rng.uniform(0.0, 3.5)
        sar_db = rng.uniform(-16, 2)
        a, b = rng.uniform(3, 8, 2) * scale
        keep = rng.random() < self.keep_prob
        if not keep:
            return
        if kind < 0.6:
            self.rect(
                cy - a / 2, cy + a / 2, cx - b / 2, cx + b / 2, CLUTTER, colour, sar_db, height
            )
        else:
            self.disc(cy, cx, max(a, b) / 2, CLUTTER, colour, sar_db, height)

    def pool(self, cy: float, cx: float, ly: float, lx: float) -> None:
        """Water (labelled clutter as in ISPRS): blue-ish, flat, radar-dark."""
        rng = self.rng
        water = np.array(
            [rng.uniform(0.01, 0.04), rng.uniform(0.05, 0.15), rng.uniform(0.15, 0.35)], np.float32
        )
        colour = _with_blue(water, min(1.4 * float(water[2]), 0.6))  # pools are blue
        keep = rng.random() < self.keep_prob
        if keep:
            self.rect(cy - ly / 2, cy + ly / 2, cx - lx / 2, cx + lx / 2, CLUTTER, colour, -24.0)


# ------------------------------------------------------------------------------------- layout


def _tree_params(rng: np.random.Generator, small: bool = False) -> tuple[float, float]:
    r = rng.uniform(3, 7) if small else rng.uniform(4, 11)
    h = rng.uniform(5, 12) if small else rng.uniform(7, 20)
    return r, h


def _residential(cv: _Canvas, y0: int, y1: int, x0: int, x1: int) -> None:
    """Two rows of houses facing the roads, gardens with trees, driveways, sheds and pools."""
    rng = cv.rng
    cv.rect(y0, y1, x0, x1, LOW_VEG, veg_colour(rng), -13.0 + rng.normal(0, 1))
    half = (y1 - y0) / 2
    for side in (0, 1):
        row = cv.view(flip_y=True) if side else cv
        ry0 = (cv.shape[0] - y1) if side else y0  # block edge on the road side, in view coords
        x = x0 + rng.uniform(2, 8)
        while x < x1 - 12:
            w = rng.uniform(22, 40)
            depth = min(half * rng.uniform(0.4, 0.6), 34.0, half - 6)
            setback = rng.uniform(4, 9)
            gap = rng.uniform(7, 16)
            lot_end = min(x + w + gap, x1)
            if depth < 10 or x + w > x1 - 2:
                break
            # Lot decorations first, so the house draws on top.
            garden = veg_colour(rng)
            row.rect(ry0 + setback + depth, ry0 + half - 1, x, lot_end, LOW_VEG, garden, -13.0)
            if rng.random() < 0.6:  # driveway with maybe a car
                dw = rng.uniform(5, 7)
                row.rect(
                    ry0,
                    ry0 + setback + depth * 0.7,
                    x + w + 1,
                    x + w + 1 + dw,
                    IMPERVIOUS,
                    grey_colour(rng, 0.15, 0.45),
                    -15.0,
                )
                if rng.random() < 0.5:
                    row.car(ry0 + setback + rng.uniform(3, 6), x + w + 1 + dw / 2, along_x=False)
            if rng.random() < 0.25:  # hedge along the lot boundary (low vegetation, 1-2 m high)
                hedge = veg_colour(rng)
                row.rect(
                    ry0 + 1,
                    ry0 + half - 2,
                    lot_end - 2,
                    lot_end,
                    LOW_VEG,
                    hedge,
                    -9.0,
                    rng.uniform(0.8, 1.8),
                )
            gabled = rng.random() < 0.75
            eave = rng.uniform(5, 8)
            row.house(
                ry0 + setback,
                ry0 + setback + depth,
                x,
                x + w,
                eave,
                eave + rng.uniform(2, 4.5),
                gabled,
                roof_colour(rng, False, cv.style),
                -11.0 + rng.normal(0, 2),
            )
            back0, back1 = ry0 + setback + depth + 2, ry0 + half - 2
            if rng.random() < 0.5 and back1 - back0 > 10:  # paved terrace behind the house
                row.rect(
                    back0 - 2,
                    back0 + rng.uniform(5, 9),
                    x + w * 0.2,
                    x + w * 0.8,
                    IMPERVIOUS,
                    grey_colour(rng, 0.2, 0.5),
                    -15.0,
                )
            for _ in range(rng.poisson(2.6)):
                if back1 - back0 < 4:
                    break
                r, h = _tree_params(rng)
                row.tree(rng.uniform(back0, back1), rng.uniform(x, lot_end), r, h, veg_colour(rng))
            u = rng.random()
            if u < 0.1 and back1 - back0 > 8:
                row.pool(
                    rng.uniform(back0 + 3, back1 - 3),
                    rng.uniform(x + 4, lot_end - 4),
                    rng.uniform(4, 7),
                    rng.uniform(6, 12),
                )
            elif u < 0.7 and back1 - back0 > 4:
                row.clutter(rng.uniform(back0, back1), rng.uniform(x, lot_end), scale=1.5)
            x = lot_end


def _apartments(cv: _Canvas, y0: int, y1: int, x0: int, x1: int) -> None:
    """Perimeter block: building wings along the block edges around a green courtyard."""
    rng = cv.rng
    cv.rect(y0, y1, x0, x1, LOW_VEG, veg_colour(rng), -13.0 + rng.normal(0, 1))
    m = rng.uniform(2, 6)
    wing = rng.uniform(18, 28)
    height = rng.uniform(12, 22)
    gabled = rng.random() < 0.5
    roof = roof_colour(rng, False, cv.style)
    sar_roof = -11.0 + rng.normal(0, 2)
    sides = [s for s in range(4) if rng.random() < 0.8] or [0]
    for side in sides:
        v = cv.view(flip_y=side in (1, 3), transpose=side >= 2)
        by0, by1, bx0, bx1 = (x0, x1, y0, y1) if side >= 2 else (y0, y1, x0, x1)
        if side in (1, 3):
            by0, by1 = cv.shape[0] - by1, cv.shape[0] - by0
        # Wings are split into segments with occasional passages.
        xa = bx0 + m
        while xa < bx1 - m - 10:
            xb = min(xa + rng.uniform(30, 90), bx1 - m)
            h = height + rng.uniform(-2, 2)
            v.house(
                by0 + m,
                by0 + m + wing,
                xa,
                xb,
                h,
                h + (rng.uniform(3, 5) if gabled else 0),
                gabled,
                roof,
                sar_roof,
            )
            xa = xb + (rng.uniform(4, 10) if rng.random() < 0.3 else 0)
    c0, c1, d0, d1 = y0 + m + wing + 3, y1 - m - wing - 3, x0 + m + wing + 3, x1 - m - wing - 3
    if c1 - c0 > 6 and d1 - d0 > 6:
        for _ in range(rng.integers(2, 9)):
            r, h = _tree_params(rng)
            cv.tree(rng.uniform(c0, c1), rng.uniform(d0, d1), r, h, veg_colour(rng))
        for _ in range(rng.integers(1, 5)):
            cv.clutter(rng.uniform(c0, c1), rng.uniform(d0, d1), scale=1.3)
        if rng.random() < 0.6:  # courtyard paths or a small car park
            cy = rng.uniform(c0, c1)
            wide = rng.random() < 0.5
            hw = rng.uniform(8, 12) if wide else 3
            cv.rect(cy - hw, cy + hw, d0, d1, IMPERVIOUS, grey_colour(rng, 0.2, 0.5), -16.0)
            if wide:
                for px in np.arange(d0 + 3, d1 - 3, 5.5):
                    if rng.random() < 0.4:
                        cv.car(cy, px, along_x=False)


def _commercial(cv: _Canvas, y0: int, y1: int, x0: int, x1: int) -> None:
    """A large flat-roofed building and a car park with rows of cars."""
    rng = cv.rng
    flip = rng.random() < 0.5
    v = cv.view(flip_y=flip)
    if flip:
        y0, y1 = cv.shape[0] - y1, cv.shape[0] - y0
    pave = grey_colour(rng)
    v.rect(y0, y1, x0, x1, IMPERVIOUS, pave, -17.0)
    m = rng.uniform(4, 10)
    depth = (y1 - y0 - 2 * m) * rng.uniform(0.45, 0.7)
    height = rng.uniform(8, 25)
    roof = roof_colour(rng, True, cv.style)
    sar_roof = rng.uniform(-14, -8)
    if rng.random() < 0.5 and x1 - x0 > 70:  # two buildings side by side
        split = x0 + (x1 - x0) * rng.uniform(0.4, 0.6)
        v.house(y0 + m, y0 + m + depth, x0 + m, split - 4, height, height, False, roof, sar_roof)
        h2 = rng.uniform(8, 25)
        v.house(
            y0 + m,
            y0 + m + depth * rng.uniform(0.6, 1.0),
            split + 4,
            x1 - m,
            h2,
            h2,
            False,
            roof_colour(rng, True, cv.style),
            rng.uniform(-14, -8),
        )
    else:
        v.house(y0 + m, y0 + m + depth, x0 + m, x1 - m, height, height, False, roof, sar_roof)
    # Car park: rows of perpendicular cars with painted slot lines.
    line = grey_colour(rng, 0.55, 0.75)
    py = y0 + m + depth + 6
    occupancy = rng.uniform(0.2, 0.65)
    while py + 10 < y1 - 3:
        xs = np.arange(x0 + m, x1 - m - 5, 5.5)
        for px in xs:
            v.rect(py - 0.5, py + 10, px, px + 1, IMPERVIOUS, line, -16.0)
            if rng.random() < occupancy:
                v.car(py + 5, px + 3, along_x=False)
        py += 22
    if rng.random() < 0.5:  # trees along the far edge
        for px in np.arange(x0 + 6, x1 - 6, rng.uniform(14, 22)):
            r, h = _tree_params(rng, small=True)
            v.tree(y1 - 4, px, r, h, veg_colour(rng))
    for _ in range(rng.integers(1, 5)):
        v.clutter(rng.uniform(y0 + m + depth + 2, y1 - 2), rng.uniform(x0, x1), scale=1.4)


def _park(cv: _Canvas, y0: int, y1: int, x0: int, x1: int) -> None:
    """Grass with tree clusters, a footpath, benches and sometimes a pond."""
    rng = cv.rng
    cv.rect(y0, y1, x0, x1, LOW_VEG, veg_colour(rng), -13.0 + rng.normal(0, 1))
    if rng.random() < 0.8:
        sl = cv.box(y0, y1, x0, x1)
        if sl is not None:
            yy, xx = np.ogrid[sl[0], sl[1]]
            ang = rng.uniform(0, math.pi)
            cy, cx = rng.uniform(y0, y1), rng.uniform(x0, x1)
            dist = np.abs((yy - cy) * math.cos(ang) - (xx - cx) * math.sin(ang))
            path = dist < rng.uniform(1.5, 3)
            colour = grey_colour(rng, 0.25, 0.5)
            cv.cls[sl][path] = IMPERVIOUS
            for b in range(len(colour)):
                cv.alb[b][sl][path] = colour[b]
            cv.sar[sl][path] = -16.0
    if rng.random() < 0.1:
        cv.pool(
            rng.uniform(y0 + 10, y1 - 10),
            rng.uniform(x0 + 10, x1 - 10),
            rng.uniform(8, 14),
            rng.uniform(10, 18),
        )
    for _ in range(rng.integers(3, 8)):
        cy, cx = rng.uniform(y0, y1), rng.uniform(x0, x1)
        colour = veg_colour(rng)
        for _ in range(rng.integers(6, 16)):
            r, h = _tree_params(rng)
            ty = np.clip(cy + rng.normal(0, 11), y0 + 2, y1 - 2)
            tx = np.clip(cx + rng.normal(0, 11), x0 + 2, x1 - 2)
            jitter = rng.uniform(0.9, 1.1, 3).astype(np.float32)
            tint = colour * np.append(jitter, jitter.mean())
            cv.tree(ty, tx, r, h, tint)
    for _ in range(rng.integers(1, 4)):
        cv.clutter(rng.uniform(y0, y1), rng.uniform(x0, x1))


def _plaza(cv: _Canvas, y0: int, y1: int, x0: int, x1: int) -> None:
    """Paved square with trees in planters, kiosks and market stalls."""
    rng = cv.rng
    cv.rect(y0, y1, x0, x1, IMPERVIOUS, grey_colour(rng, 0.2, 0.5), -14.0)
    if rng.random() < 0.4:  # a small grass lawn in the middle
        cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
        hy, hx = (y1 - y0) * rng.uniform(0.15, 0.3), (x1 - x0) * rng.uniform(0.15, 0.3)
        cv.rect(cy - hy, cy + hy, cx - hx, cx + hx, LOW_VEG, veg_colour(rng), -13.0)
    for _ in range(rng.integers(2, 8)):
        r, h = _tree_params(rng, small=True)
        cv.tree(rng.uniform(y0 + 3, y1 - 3), rng.uniform(x0 + 3, x1 - 3), r, h, veg_colour(rng))
    for _ in range(rng.integers(2, 7)):
        cv.clutter(rng.uniform(y0 + 3, y1 - 3), rng.uniform(x0 + 3, x1 - 3), scale=1.4)
    for _ in range(rng.integers(0, 4)):
        cv.car(rng.uniform(y0 + 5, y1 - 5), rng.uniform(x0 + 5, x1 - 5), bool(rng.random() < 0.5))


def _road_positions(rng: np.random.Generator, size: int) -> list[tuple[float, float, float]]:
    """(centre, road half width, sidewalk width) of parallel roads crossing the canvas."""
    roads = []
    pos = rng.uniform(-60, 20)
    while pos < size + 60:
        half = rng.uniform(5, 9)
        walk = rng.uniform(2.5, 4.5) if rng.random() < 0.7 else 0.0
        roads.append((pos, half, walk))
        pos += rng.uniform(100, 175)
    return roads


def _draw_roads(cv: _Canvas, roads_y: list, roads_x: list) -> None:
    rng = cv.rng
    size = cv.shape[0]
    asphalt = grey_colour(rng)
    walk_colour = grey_colour(rng, 0.15, 0.45)
    for roads, view in ((roads_y, cv), (roads_x, cv.view(transpose=True))):
        for c, half, walk in roads:
            if walk:
                view.rect(c - half - walk, c + half + walk, 0, size, IMPERVIOUS, walk_colour, -15.0)
    for roads, view in ((roads_y, cv), (roads_x, cv.view(transpose=True))):
        for c, half, _ in roads:
            colour = asphalt * rng.uniform(0.9, 1.1)
            view.rect(c - half, c + half, 0, size, IMPERVIOUS, colour, -19.0 + rng.normal(0, 1))
    paint = grey_colour(rng, 0.6, 0.8)
    for roads, view in ((roads_y, cv), (roads_x, cv.view(transpose=True))):
        for c, half, _ in roads:
            if half >= 7 and rng.random() < 0.5:
                for x in np.arange(rng.uniform(0, 10), size, 10.0):
                    view.rect(c - 0.5, c + 0.5, x, x + 5, IMPERVIOUS, paint, -19.0)


def _street_life(cv: _Canvas, roads: list, crossing: list) -> None:
    """Parked and moving cars along x-aligned roads, street trees along their sidewalks.

    Nothing is placed inside the crossing roads (intersections stay free).
    """
    rng = cv.rng
    size = cv.shape[1]

    def free(x: float, margin: float) -> bool:
        return all(abs(x - c) > half + walk + margin for c, half, walk in crossing)

    for c, half, walk in roads:
        for side in (-1, 1):
            lane = c + side * (half - 2.8)
            p_park = rng.uniform(0.03, 0.3)
            for x in np.arange(rng.uniform(0, 6), size, 11.0):
                if rng.random() < p_park and free(x + 5, 6):
                    cv.car(lane, x + 5, along_x=True)
            for x in np.arange(rng.uniform(0, 30), size, 30.0):
                if rng.random() < 0.08 and free(x, 5):
                    cv.car(c + side * 2.5, x, along_x=True)
            if rng.random() < 0.55:
                edge = c + side * (half + walk + 1)
                for x in np.arange(rng.uniform(0, 10), size, rng.uniform(14, 24)):
                    r, h = _tree_params(rng, small=True)
                    if free(x, r):
                        cv.tree(edge, x, r, h, veg_colour(rng))


def _intervals(roads: list, size: int) -> list[tuple[int, int]]:
    """Block extents between consecutive roads (inside the sidewalks)."""
    out = []
    for (c0, h0, w0), (c1, h1, w1) in zip(roads[:-1], roads[1:], strict=True):
        a, b = int(math.ceil(c0 + h0 + w0)), int(math.floor(c1 - h1 - w1))
        if b - a >= 8 and b > 0 and a < size:
            out.append((a, b))
    return out


def _draw_layout(cv: _Canvas) -> None:
    rng = cv.rng
    size = cv.shape[0]
    roads_y = _road_positions(rng, size)
    roads_x = _road_positions(rng, size)
    for a, b in _intervals(roads_y, size):
        for c, d in _intervals(roads_x, size):
            kind = rng.choice(5, p=[0.34, 0.24, 0.18, 0.14, 0.10])
            if min(b - a, d - c) < 40:
                kind = 3 if rng.random() < 0.6 else 4
            # Let the layout code assume the long axis is x.
            if b - a > d - c:
                view, box = cv.view(transpose=True), (c, d, a, b)
            else:
                view, box = cv, (a, b, c, d)
            (_residential, _apartments, _commercial, _park, _plaza)[kind](view, *box)
    _draw_roads(cv, roads_y, roads_x)
    _street_life(cv, roads_y, roads_x)
    _street_life(cv.view(transpose=True), roads_x, roads_y)


# ------------------------------------------------------------------------------------ sensors


def _rotation_indices(size: int, canvas: int, angle: float) -> tuple[np.ndarray, np.ndarray]:
    c, cc = (size - 1) / 2, (canvas - 1) / 2
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cs, sn = math.cos(angle), math.sin(angle)
    iy = np.rint(cc + cs * (yy - c) - sn * (xx - c)).astype(np.intp)
    ix = np.rint(cc + sn * (yy - c) + cs * (xx - c)).astype(np.intp)
    return np.clip(iy, 0, canvas - 1), np.clip(ix, 0, canvas - 1)


def _to_canvas_dir(vec: np.ndarray, angle: float) -> np.ndarray:
    cs, sn = math.cos(angle), math.sin(angle)
    return np.array([cs * vec[0] - sn * vec[1], sn * vec[0] + cs * vec[1]])


def generate_scene(
    size: int,
    rng: np.random.Generator,
    imbalance: float = 1.0,
    style: SceneStyle = LEGACY_STYLE,
) -> dict[str, np.ndarray]:
    """One random scene: `mask` uint8 [H,W], `optical` [3,H,W] (NIR, R, G), `dsm` [1,H,W],
    `sar` [1,H,W] and `blue` [1,H,W] (the blue band, which only `synthetic_4m` shows).

    `imbalance` >= 1 keeps each car, clutter object and pool with probability 1/imbalance
    (the surface below stays); every random draw still happens, so the rest of the scene is
    identical for any imbalance with the same generator state.

    `style` sets how much optical and DSM reveal (`SceneStyle`). The blue band is derived from
    the material colours without random draws, and its sensor noise is drawn after everything
    else, so with `LEGACY_STYLE` mask, optical, DSM and SAR equal the original generator's.
    """
    canvas = int(math.ceil(size * math.sqrt(2))) + 4
    angle = rng.uniform(0, math.pi / 2)
    sun_az = rng.uniform(0, 2 * math.pi)
    sun_out = np.array([-math.cos(sun_az), math.sin(sun_az)])  # towards the sun, (y, x)
    sun_elev = rng.uniform(35, 60)
    look_az = rng.uniform(0, 2 * math.pi)
    look_out = np.array([-math.cos(look_az), math.sin(look_az)])  # towards the radar
    incidence = rng.uniform(30, 45)

    cv = _Canvas(
        cls=np.full((canvas, canvas), LOW_VEG, np.uint8),
        height=np.zeros((canvas, canvas), np.float32),
        alb=np.zeros((4, canvas, canvas), np.float32),
        shade=np.ones((canvas, canvas), np.float32),
        sar=np.full((canvas, canvas), -13.0, np.float32),
        sun=_to_canvas_dir(sun_out, angle),
        sun_elev=sun_elev,
        look=_to_canvas_dir(look_out, angle),
        incidence=incidence,
        rng=rng,
        keep_prob=1.0 / imbalance,
        style=style,
    )
    cv.alb[:] = veg_colour(rng)[:, None, None]
    _draw_layout(cv)

    iy, ix = _rotation_indices(size, canvas, angle)
    mask = cv.cls[iy, ix]
    height = cv.height[iy, ix]
    alb = cv.alb[:, iy, ix]
    shade = cv.shade[iy, ix]
    sar_base = cv.sar[iy, ix]

    optical, light, gain = _optical(rng, mask, height, alb[:3], shade, sun_out, sun_elev, style)
    dsm = _dsm(rng, mask, height, style)
    sar = _sar(rng, mask, height, sar_base, look_out, incidence)
    blue = _blue(rng, alb[3], light, gain)
    return {
        "mask": mask,
        "optical": optical,
        "dsm": dsm[None],
        "sar": sar[None],
        "blue": blue[None],
    }


def _optical(
    rng: np.random.Generator,
    mask: np.ndarray,
    height: np.ndarray,
    alb: np.ndarray,
    shade: np.ndarray,
    sun: np.ndarray,
    sun_elev: float,
    style: SceneStyle,
) -> tuple[np.ndarray, np.ndarray, float]:
    """NIR-R-G image, plus the per-pixel illumination and the mean band gain (for `_blue`)."""
    size = mask.shape[0]
    fine, clumps = _OPT_FINE, _OPT_SMOOTH
    if style.tree_texture_gain != 1.0:
        fine, clumps = _OPT_FINE.copy(), _OPT_SMOOTH.copy()
        fine[TREE] *= np.float32(style.tree_texture_gain)
        clumps[TREE] *= np.float32(style.tree_texture_gain)
    texture = (
        1
        + fine[mask] * rng.standard_normal((size, size), dtype=np.float32)
        + clumps[mask] * smooth_noise(rng, size, max(2, size // 24))
    )
    shadow = cast_shadow(height, (-sun[0], -sun[1]), math.tan(math.radians(sun_elev)) * PIXEL_M)
    darkness = np.where(shadow, rng.uniform(0.3, 0.45), 1.0).astype(np.float32)
    gain = rng.uniform(0.85, 1.15) * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    light = texture * shade * darkness
    img = alb * light[None] * gain[:, None, None]
    img = gaussian_blur(img, 0.6)
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0).astype(np.float32), light, float(gain.mean())


def _blue(rng: np.random.Generator, alb: np.ndarray, light: np.ndarray, gain: float) -> np.ndarray:
    """The blue band under the same illumination as the others; its noise is the scene's last
    random draw, so adding this band changed nothing else."""
    img = gaussian_blur(alb * light * np.float32(gain), 0.6)
    img += rng.normal(0, 0.01, img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _dsm(
    rng: np.random.Generator, mask: np.ndarray, height: np.ndarray, style: SceneStyle
) -> np.ndarray:
    """Matching-style DSM: terrain + objects + roughness, smoothed, with noise (8 cm at
    legacy quality; `SceneStyle.dsm_quality` sets blur, noise and lawn roughness)."""
    size = mask.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    slope = rng.normal(0, 0.006, 2)  # metres per pixel
    terrain = (
        rng.uniform(0, 4)
        + slope[0] * yy
        + slope[1] * xx
        + 0.4 * smooth_noise(rng, size, max(2, size // 96))
    )
    rough = _DSM_ROUGH
    if style.dsm_quality != 1.0:
        rough = _DSM_ROUGH.copy()
        rough[LOW_VEG] = np.float32(style.lawn_roughness_m)
        height = np.where(mask == TREE, height * np.float32(style.crown_height_scale), height)
    surface = terrain + height + rough[mask] * rng.standard_normal((size, size), np.float32)
    surface = gaussian_blur(surface.astype(np.float32), style.dsm_blur_px)
    surface += rng.normal(0, style.dsm_noise_m, surface.shape).astype(np.float32)
    if style.dsm_quality != 1.0:  # extra draws only off the legacy style (see SceneStyle)
        blotches = smooth_noise(rng, size, max(2, size // 4))
        surface += np.float32(style.matching_blotch_m) * blotches
    return surface.astype(np.float32)


def _sar(
    rng: np.random.Generator,
    mask: np.ndarray,
    height: np.ndarray,
    base_db: np.ndarray,
    look: np.ndarray,
    incidence: float,
) -> np.ndarray:
    """Backscatter in dB: double bounce, radar shadow, volume scattering, gamma speckle."""
    size = mask.shape[0]
    db = base_db + _SAR_TEXTURE_DB[mask] * rng.standard_normal((size, size), np.float32)
    # Double bounce: ground just in front of a wall that faces the radar (wave travels -look).
    wave = (-look[0], -look[1])
    padded = np.pad(np.where(mask == BUILDING, height, 0), 3, mode="edge")
    ahead = np.zeros_like(height)
    for s in (1, 2, 3):
        dy, dx = int(round(s * wave[0])), int(round(s * wave[1]))
        np.maximum(ahead, padded[3 + dy : 3 + dy + size, 3 + dx : 3 + dx + size], out=ahead)
    wall = (ahead - height > 3.0) & (mask != BUILDING) & (mask != TREE)
    db = np.where(wall, np.float32(rng.uniform(6, 12)), db)
    shadow = cast_shadow(height, wave, PIXEL_M / math.tan(math.radians(incidence)))
    db = np.where(shadow, np.float32(-24.0), db)
    intensity = gaussian_blur((10.0 ** (db / 10)).astype(np.float32), 0.6)
    looks = 4.0
    intensity = intensity * rng.gamma(looks, 1 / looks, intensity.shape).astype(np.float32)
    out = 10 * np.log10(np.maximum(intensity, 1e-4))
    return np.clip(out, -30, 15).astype(np.float32)
