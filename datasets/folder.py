"""Card-driven tile datasets: the mechanism behind `folder` and every real dataset.

A *card* describes co-registered rasters on disk: one sub-folder per modality plus a label
folder, files matched by a tile id, how labels are encoded, the classes and the splits. The
real datasets (`vaihingen`, `potsdam`, `whu_opt_sar`, `earthmiss`) are presets of this
mechanism: they build their card from options and only override where the provider's files
need it (zero-padded names, fallbacks between label folders, palette decoding).

`folder` reads a YAML card for the user's own data, run as
`--dataset "folder[card=<folder>/card.yaml]"` (a relative card path is resolved against the data
root, `--data-root`, then the working directory; the data sit beside the card unless it sets
`root:`; rows and tables name the dataset by the card's `name`)::

    <folder>/
      card.yaml
      optical/<id>.tif              one sub-folder per modality (any of tif/tiff/png/jpg)
      dsm/<id>.tif
      labels/<id>.png

    # card.yaml
    name: my_city                   # lower-case identifier (tables, rows, the cache folder)
    description: RGB + DSM of my city
    modalities:
      optical: {folder: optical, channels: 3}               # bands: [0, 1, 2] selects bands
      dsm: {folder: dsm, channels: 1, pattern: "{id}_dsm"}  # file stem pattern (default {id})
    labels:
      folder: labels
      pattern: "{id}"
      encoding: index               # index (value = class) | values (raw -> class map)
                                    # | palette (RGB colours in the order of `classes`)
      values: {10: 0, 20: 1}        # for encoding: values
      ignore: [255]                 # raw values meaning "unlabelled" (index / values)
    classes: [impervious_surfaces, building]
    palette: [[255, 255, 255], [0, 0, 255]]   # optional for index / values encodings
    eval_classes: [0, 1]            # optional: classes in the macro means (default all)
    splits: {train: ["a1", "a2"], val: ["a3"], test: ["a4"]}   # quoted ids: letters, digits, _.+-
    # or instead: split_ratios: {train: 0.7, val: 0.1, test: 0.2}, seed: 0

Any label value that is not a class (unmapped raw value, colour outside the palette) becomes
`ignore_index` (255). Decoded tiles are cached memory-mapped (`datasets/files/tile_cache.py`),
channel statistics come from the train split and are cached as JSON. The card and every file
its splits resolve are part of a run's id, the files by path relative to the data folder and
bytes: an edited, replaced or added tile is another run (`datasets/files/data_digest.py`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmark.api import (
    MASK,
    BenchmarkError,
    DatasetNotFoundError,
    DatasetOptions,
    DatasetSpec,
    Modality,
    MultiModalDataset,
    RawSample,
    Window,
    current_data_root,
    register_dataset,
)
from datasets.files.bounded_yaml import read_bounded_yaml
from datasets.files.card_fields import CardFields
from datasets.files.data_digest import DIGESTS_FILE, data_digest
from datasets.files.raster_io import (
    RASTER_SUFFIXES,
    decode_palette,
    decode_values,
    find_file,
    raster_size,
    read_raster,
    select_bands,
)
from datasets.files.statistics import cached_stats, channel_stats
from datasets.files.tile_cache import TileCache, cache_root, fingerprint

log = logging.getLogger(__name__)

IGNORE = 255
SPLITS = ("train", "val", "test")
ENCODINGS = ("index", "values", "palette")
ROWS_PER_CHUNK = 1024


# ------------------------------------------------------------------------------ the card


@dataclasses.dataclass(frozen=True)
class ModalityCard:
    name: str
    channels: int
    folder: str
    pattern: str = "{id}"
    """File stem with an `{id}` placeholder; a suffix in it is used as is, else any raster."""
    bands: tuple[int, ...] | None = None
    description: str = ""


@dataclasses.dataclass(frozen=True)
class LabelCard:
    folder: str
    pattern: str = "{id}"
    encoding: str = "index"
    values: tuple[tuple[int, int], ...] = ()
    ignore: tuple[int, ...] = ()
    strict: bool = True
    """index/values encodings: a raw value neither mapped nor in `ignore` is an error (True)
    or silently unlabelled (False, for providers whose files carry stray values)."""


@dataclasses.dataclass(frozen=True)
class Card:
    name: str
    modalities: tuple[ModalityCard, ...]
    labels: LabelCard
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...] = ()
    eval_classes: tuple[int, ...] = ()
    label_set: str = ""
    description: str = ""
    splits: tuple[tuple[str, tuple[str, ...]], ...] = ()
    split_ratios: tuple[float, float, float] | None = None
    seed: int = 0
    root: str = "."

    def split_ids(self, split: str) -> tuple[str, ...] | None:
        return dict(self.splits).get(split) if self.splits else None


def default_palette(n: int) -> tuple[tuple[int, int, int], ...]:
    """Distinct colours for classes without a provider palette (deterministic)."""
    import colorsys

    return tuple(
        tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(i / max(n, 1), 0.75, 0.95))
        for i in range(n)
    )


CARD_KEYS = frozenset(
    {
        "name",
        "description",
        "modalities",
        "labels",
        "classes",
        "palette",
        "eval_classes",
        "label_set",
        "splits",
        "split_ratios",
        "seed",
        "root",
    }
)
MODALITY_KEYS = frozenset({"folder", "channels", "pattern", "bands", "description"})
LABEL_KEYS = frozenset({"folder", "pattern", "encoding", "values", "ignore"})
MAX_CHANNELS = 1024
MAX_CLASSES = 1024
RAW_VALUES = (-(1 << 31), (1 << 31) - 1)
"""Raw label values a card may map or ignore (int32: providers use -1, 255, 65535...)."""


def card_from_mapping(data: Any, where: str = "<dict>") -> Card:
    """Validate a card given as a mapping (parsed YAML): every field typed and in range; an
    error names the key, the value and what was expected (`datasets/files/card_fields.py`)."""
    f = CardFields(where)
    if not isinstance(data, Mapping):
        raise BenchmarkError(
            f"card {where}: must be a mapping of keys (name:, modalities:, labels:, ...), not "
            f"{type(data).__name__ if data is not None else 'empty'}"
        )
    _refuse_unknown(f, "(the card)", data, CARD_KEYS)
    name = f.identifier("name", data.get("name", "folder"))
    modalities = _modalities(f, data.get("modalities"))
    classes = f.unique_texts("classes", data.get("classes"))
    if len(classes) > MAX_CLASSES:
        raise f.fail("classes", f"{len(classes)} names", f"at most {MAX_CLASSES} classes")
    labels = _labels(f, data.get("labels"), len(classes))
    palette = _palette(f, data.get("palette"), classes, labels.encoding)
    split_items, ratio_values = _splits(f, data.get("splits"), data.get("split_ratios"))
    eval_classes = tuple(
        f.integer(f"eval_classes[{i}]", c, 0, len(classes) - 1)
        for i, c in enumerate(f.sequence("eval_classes", data.get("eval_classes") or ()))
    )
    if len(set(eval_classes)) != len(eval_classes):
        raise f.fail("eval_classes", list(eval_classes), "distinct class indices")
    return Card(
        name=name,
        modalities=modalities,
        labels=labels,
        classes=classes,
        palette=palette,
        eval_classes=eval_classes,
        label_set=f.text("label_set", data.get("label_set", "")),
        description=f.text("description", data.get("description", "")),
        splits=split_items,
        split_ratios=ratio_values,
        seed=f.integer("seed", data.get("seed", 0), 0, 2**32 - 1),
        root=f.text("root", data.get("root", "."), allow_empty=False),
    )


def _refuse_unknown(f: CardFields, key: str, entry: Mapping, known: frozenset) -> None:
    unknown = sorted(str(k) for k in set(entry) - known)
    if unknown:
        place = "" if key == "(the card)" else f" in {key}"
        raise BenchmarkError(
            f"card {f.where}: unknown key(s) {', '.join(unknown)}{place}; valid: "
            f"{', '.join(sorted(known))}"
        )


def _modalities(f: CardFields, mods: Any) -> tuple[ModalityCard, ...]:
    if mods is None:
        raise BenchmarkError(
            f"card {f.where}: needs `modalities: {{name: {{folder: ..., channels: N}}, ...}}`"
        )
    mods = f.mapping("modalities", mods)
    if not mods:
        raise f.fail("modalities", mods, "{name: {folder: ..., channels: N}, ...}")
    modalities = []
    for mod_name, entry in mods.items():
        key = f"modalities.{mod_name}"
        mod_name = f.identifier("modalities", mod_name)
        entry = f.mapping(key, entry)
        _refuse_unknown(f, key, entry, MODALITY_KEYS)
        if "channels" not in entry:
            raise f.fail(key, dict(entry), "at least `channels: N`")
        channels = f.integer(f"{key}.channels", entry["channels"], 1, MAX_CHANNELS)
        bands = None
        if entry.get("bands") is not None:
            raw = f.sequence(f"{key}.bands", entry["bands"])
            bands = tuple(f.integer(f"{key}.bands", b, 0, MAX_CHANNELS - 1) for b in raw)
            if len(bands) != channels:
                raise f.fail(f"{key}.bands", list(bands), f"{channels} band indices (channels)")
        modalities.append(
            ModalityCard(
                name=mod_name,
                channels=channels,
                folder=f.relative_folder(f"{key}.folder", entry.get("folder", mod_name)),
                pattern=f.pattern(f"{key}.pattern", entry.get("pattern", "{id}")),
                bands=bands,
                description=f.text(f"{key}.description", entry.get("description", "")),
            )
        )
    return tuple(modalities)


def _labels(f: CardFields, labels: Any, num_classes: int) -> LabelCard:
    labels = f.mapping("labels", labels)
    _refuse_unknown(f, "labels", labels, LABEL_KEYS)
    if "folder" not in labels:
        raise f.fail("labels", dict(labels), "`folder: ...` and `encoding: index|values|palette`")
    encoding = f.text("labels.encoding", labels.get("encoding", "index"))
    if encoding not in ENCODINGS:
        raise f.fail("labels.encoding", encoding, f"one of {', '.join(ENCODINGS)}")
    ignore = labels.get("ignore", [])
    ignore = [ignore] if not isinstance(ignore, Sequence) or isinstance(ignore, str) else ignore
    values = f.mapping("labels.values", labels.get("values") or {})
    if encoding == "values" and not values:
        raise f.fail("labels.values", dict(values), "{raw value: class index, ...}")
    pairs = tuple(
        (
            f.integer("labels.values (raw value)", raw, *RAW_VALUES),
            f.integer(f"labels.values.{raw}", cls, 0, num_classes - 1),
        )
        for raw, cls in values.items()
    )
    return LabelCard(
        folder=f.relative_folder("labels.folder", labels["folder"]),
        pattern=f.pattern("labels.pattern", labels.get("pattern", "{id}")),
        encoding=encoding,
        values=pairs,
        ignore=tuple(f.integer("labels.ignore", v, *RAW_VALUES) for v in ignore),
    )


def _palette(
    f: CardFields, palette: Any, classes: tuple[str, ...], encoding: str
) -> tuple[tuple[int, int, int], ...]:
    if palette is None:
        if encoding == "palette":
            raise f.fail("palette", None, "[[r, g, b], ...] (labels.encoding is 'palette')")
        return default_palette(len(classes))
    colours = f.sequence("palette", palette)
    if len(colours) != len(classes):
        raise f.fail(
            "palette", f"{len(colours)} colours", f"one [r, g, b] per class ({len(classes)})"
        )
    return tuple(f.colour(f"palette[{i}] ({classes[i]})", c) for i, c in enumerate(colours))


def _splits(
    f: CardFields, splits: Any, ratios: Any
) -> tuple[tuple[tuple[str, tuple[str, ...]], ...], tuple[float, float, float] | None]:
    if (splits is None) == (ratios is None):
        raise f.fail("splits / split_ratios", None, "exactly one of them")
    if splits is not None:
        splits = f.mapping("splits", splits)
        if set(splits) != set(SPLITS):
            raise f.fail("splits", sorted(map(str, splits)), "the keys train, val and test")
        items = []
        for split in SPLITS:
            raw = f.sequence(f"splits.{split}", splits[split])
            items.append((split, tuple(f.tile_id(f"splits.{split}", i) for i in raw)))
        return tuple(items), None
    ratios = f.mapping("split_ratios", ratios)
    if set(ratios) != set(SPLITS):
        raise f.fail("split_ratios", sorted(map(str, ratios)), "the keys train, val and test")
    values = tuple(f.number(f"split_ratios.{s}", ratios[s], positive=True) for s in SPLITS)
    return (), values  # type: ignore[return-value]


def load_card(path: Path) -> Card:
    """Read and validate the YAML card at `path` (bounded: `datasets/files/bounded_yaml.py`)."""
    if not Path(path).is_file():
        raise DatasetNotFoundError(
            f"folder: cannot read card {path} (no such file); pass --dataset "
            "'folder[card=PATH/card.yaml]' with the card beside your <modality>/ and labels/ "
            "folders (format: datasets/folder.py)"
        )
    return card_from_mapping(read_bounded_yaml(Path(path)), str(path))


# ---------------------------------------------------------------------------- the dataset


@dataclasses.dataclass(frozen=True)
class Tile:
    """One tile of a split: its id and the files it is decoded from."""

    id: str
    sources: tuple[tuple[str, Path], ...]
    """(modality, path) per modality."""
    label: Path


class TileDataset(MultiModalDataset):
    """A split of co-registered raster tiles described by a `Card`, cached memory-mapped.

    Subclasses build the card (`build_card`) and may override how files are found
    (`modality_path`, `label_path`), read (`read_modality`, `read_label`) and split
    (`split_ids`). `LAYOUT` and `SOURCE` feed the one-line error when data are absent.
    """

    DIRNAME: ClassVar[str] = ""
    """Sub-folder of the data root holding the provider's layout (the root itself also works)."""
    LAYOUT: ClassVar[str] = ""
    SOURCE: ClassVar[str] = ""

    def __init__(self, root: Path, split: str, options: DatasetOptions | None = None) -> None:
        super().__init__(root, split, options)
        self.card = self.build_card()
        self.data_dir = self.locate_data_dir()
        self._cache = TileCache(cache_root(self.cache_base()) / self.card.name)
        self.tiles = [self.resolve_tile(i) for i in self.split_ids(split)]
        if not self.tiles:
            raise self.not_found(f"no {split} tiles found")
        self._spec: DatasetSpec | None = None
        self._shapes: dict[int, tuple[int, int]] = {}

    # ---------------------------------------------------------------- to override
    def build_card(self) -> Card:
        raise NotImplementedError

    def split_ids(self, split: str) -> list[str]:
        ids = self.card.split_ids(split)
        if ids is not None:
            return list(ids)
        return ratio_split(self.discover_ids(), self.card.split_ratios, self.card.seed)[split]

    def modality_path(self, modality: ModalityCard, tile_id: str) -> Path | None:
        return self._find(self.data_dir / modality.folder, modality.pattern, tile_id)

    def label_path(self, tile_id: str) -> Path | None:
        labels = self.card.labels
        return self._find(self.data_dir / labels.folder, labels.pattern, tile_id)

    def read_modality(self, modality: ModalityCard, path: Path) -> np.ndarray:
        array = select_bands(read_raster(path), modality.bands, path)
        if array.shape[0] != modality.channels:
            raise BenchmarkError(
                f"{path}: {array.shape[0]} band(s), but modality {modality.name!r} expects "
                f"{modality.channels} (select bands with `bands`)"
            )
        check_finite(array, path, modality.name)
        return array

    def read_label(self, path: Path) -> np.ndarray:
        labels = self.card.labels
        raw = read_raster(path)
        dtype = self.mask_dtype
        if labels.encoding == "palette":
            return decode_palette(raw, self.card.palette, IGNORE, path, dtype)
        if labels.encoding == "values":
            mapping = dict(labels.values)
        else:
            mapping = {c: c for c in range(len(self.card.classes))}
        for value in labels.ignore:
            mapping.pop(value, None)
        unlabelled = labels.ignore if labels.strict else None
        return decode_values(raw, mapping, IGNORE, path, dtype, unlabelled=unlabelled)

    def locate_data_dir(self) -> Path:
        base = self.root / self.card.root if self.card.root != "." else self.root
        if self.DIRNAME and (base / self.DIRNAME).is_dir():
            return base / self.DIRNAME
        if base.is_dir() and self.looks_like_layout(base):
            return base
        raise self.not_found(f"no {self.DIRNAME or 'data'} folder", base)

    def cache_base(self) -> Path:
        """The folder whose `.missbench_cache/` holds decoded tiles (default: the data root)."""
        return self.root

    def looks_like_layout(self, directory: Path) -> bool:
        return any((directory / m.folder).is_dir() for m in self.card.modalities)

    # ---------------------------------------------------------------- helpers
    @property
    def mask_dtype(self) -> type:
        return np.uint8 if len(self.card.classes) < IGNORE else np.uint16

    def not_found(self, what: str, where: Path | None = None) -> DatasetNotFoundError:
        where = where if where is not None else getattr(self, "data_dir", self.root)
        layout = f"; expected layout: {self.LAYOUT}" if self.LAYOUT else ""
        source = f"; {self.SOURCE}" if self.SOURCE else ""
        return DatasetNotFoundError(f"{self.NAME}: {what} under {where}{layout}{source}")

    @staticmethod
    def _find(folder: Path, pattern: str, tile_id: str) -> Path | None:
        stem = pattern.format(id=tile_id)
        if Path(stem).suffix.lower() in RASTER_SUFFIXES:
            path = folder / stem
            return path if path.is_file() else None
        return find_file(folder, stem)

    def discover_ids(self) -> list[str]:
        """Tile ids from the label folder's file names (matching the label pattern)."""
        labels = self.card.labels
        folder = self.data_dir / labels.folder
        if not folder.is_dir():
            raise self.not_found(f"no label folder {labels.folder}/")
        stem = re.escape(labels.pattern).replace(re.escape("{id}"), "(?P<id>.+)")
        has_suffix = Path(labels.pattern).suffix.lower() in RASTER_SUFFIXES
        regex = re.compile(stem + ("" if has_suffix else r"\.[A-Za-z]+") + "$")
        ids = []
        for path in sorted(folder.iterdir()):
            match = regex.match(path.name)
            if match and (has_suffix or path.suffix.lower() in RASTER_SUFFIXES):
                ids.append(match.group("id"))
        return sorted(set(ids))

    def resolve_tile(self, tile_id: str) -> Tile:
        sources = []
        for modality in self.card.modalities:
            path = self.modality_path(modality, tile_id)
            if path is None:
                raise self.not_found(
                    f"tile {tile_id!r}: no {modality.name} file in {modality.folder}/"
                )
            sources.append((modality.name, path))
        label = self.label_path(tile_id)
        if label is None:
            raise self.not_found(f"tile {tile_id!r}: no label file in {self.card.labels.folder}/")
        return Tile(tile_id, tuple(sources), label)

    # ---------------------------------------------------------------- the cache
    def _modality_card(self, name: str) -> ModalityCard:
        return next(m for m in self.card.modalities if m.name == name)

    def _array(self, index: int, key: str) -> np.ndarray:
        tile = self.tiles[index]
        if key == MASK:
            params = ["label", dataclasses.asdict(self.card.labels), self.card.palette]
            fp = fingerprint([tile.label], params)
            array = self._cache.get(f"{tile.id}.{MASK}", fp, lambda: self.read_label(tile.label))
            expected = self.tile_shape(index)
        else:
            modality = self._modality_card(key)
            path = dict(tile.sources)[key]
            fp = fingerprint([path], ["modality", dataclasses.asdict(modality)])
            array = self._cache.get(
                f"{tile.id}.{key}", fp, lambda: self.read_modality(modality, path)
            )
            expected = self.tile_shape(index)
        if tuple(array.shape[-2:]) != expected:
            source = tile.label if key == MASK else dict(tile.sources)[key]
            raise BenchmarkError(
                f"{self.NAME} tile {tile.id!r}: {source} is {array.shape[-2]}x{array.shape[-1]} "
                f"but the label is {expected[0]}x{expected[1]}; modalities must be co-registered"
            )
        return array

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__.copy()  # memmaps are reopened lazily (np.load per access)

    # ---------------------------------------------------------------- the contract
    @classmethod
    def modalities_for(cls, options: DatasetOptions) -> tuple[str, ...]:
        return cls.MODALITIES

    def __len__(self) -> int:
        return len(self.tiles)

    def tile_name(self, index: int) -> str:
        return self.tiles[index].id

    def tile_shape(self, index: int) -> tuple[int, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"tile {index} out of range for {len(self)} {self.split} tiles")
        if index not in self._shapes:
            self._shapes[index] = raster_size(self.tiles[index].label)
        return self._shapes[index]

    def load(self, index: int, window: Window | None = None) -> RawSample:
        self.tile_shape(index)
        rows, cols = window if window is not None else (slice(None), slice(None))
        sample: RawSample = {}
        for modality in self.card.modalities:
            array = self._array(index, modality.name)
            sample[modality.name] = np.array(array[:, rows, cols], dtype=np.float32)
        sample[MASK] = np.array(self._array(index, MASK)[rows, cols], dtype=np.int64)
        return sample

    def class_pixel_counts(self) -> np.ndarray:
        k = len(self.card.classes)
        counts = np.zeros(k, dtype=np.int64)
        for index in range(len(self)):
            mask = self._array(index, MASK)
            for start in range(0, mask.shape[0], ROWS_PER_CHUNK):
                chunk = np.asarray(mask[start : start + ROWS_PER_CHUNK]).ravel()
                counts += np.bincount(chunk, minlength=IGNORE + 1)[:k]
        return counts

    def train_dataset(self) -> TileDataset:
        return self if self.split == "train" else type(self)(self.root, "train", self.options)

    @property
    def spec(self) -> DatasetSpec:
        if self._spec is None:
            stats = self._train_stats()
            card = self.card
            modalities = tuple(
                Modality(
                    name=m.name,
                    channels=m.channels,
                    mean=tuple(float(v) for v in stats[m.name]["mean"]),
                    std=tuple(max(float(v), 1e-6) for v in stats[m.name]["std"]),
                    description=m.description,
                )
                for m in card.modalities
            )
            self._spec = DatasetSpec(
                name=card.name,
                modalities=modalities,
                classes=card.classes,
                palette=card.palette,
                ignore_index=IGNORE,
                eval_classes=card.eval_classes,
                label_set=card.label_set,
                description=card.description or (type(self).__doc__ or "").strip(),
            )
        return self._spec

    def _train_stats(self) -> dict[str, dict[str, list[float]]]:
        train = self.train_dataset()
        sources = [p for t in train.tiles for _, p in t.sources]
        key = fingerprint(sources, [dataclasses.asdict(m) for m in self.card.modalities])
        path = self._cache.directory / f"stats-train--{key}.json"

        def compute() -> dict[str, dict[str, list[float]]]:
            out = {}
            for m in self.card.modalities:
                tiles = (train._array(i, m.name) for i in range(len(train)))
                mean, std, _ = channel_stats(tiles)
                out[m.name] = {"mean": mean, "std": std}
            return out

        return cached_stats(path, compute)


def check_finite(array: np.ndarray, path: Path, modality: str) -> None:
    """Refuse a raster without one finite value; warn how much of a partly invalid one is
    nodata (NaN or inf), which the documented policy fills with the channel mean."""
    if np.issubdtype(array.dtype, np.integer):
        return
    invalid = 0
    for start in range(0, array.shape[-2], ROWS_PER_CHUNK):
        invalid += int((~np.isfinite(array[..., start : start + ROWS_PER_CHUNK, :])).sum())
    if invalid == array.size:
        raise BenchmarkError(
            f"{path}: modality {modality!r} has no finite value (all NaN or inf); a modality "
            "file must carry data (leave the tile out, or give the modality's real raster)"
        )
    if invalid:
        log.warning(
            "%s: %.1f %% of the %s values are NaN or inf (nodata); they are filled with the "
            "channel mean",
            path,
            100 * invalid / array.size,
            modality,
        )


def ratio_split(
    ids: Sequence[str], ratios: tuple[float, float, float] | None, seed: int
) -> dict[str, list[str]]:
    """Seeded shuffle of `ids` cut by (train, val, test) ratios; each split gets >= 1 tile
    when there are at least three."""
    if ratios is None:
        raise BenchmarkError("card has neither `splits` nor `split_ratios`")
    order = list(ids)
    np.random.default_rng(seed).shuffle(order)
    n = len(order)
    total = sum(ratios)
    n_val = round(n * ratios[1] / total)
    n_test = round(n * ratios[2] / total)
    if n >= 3:
        n_val, n_test = max(1, n_val), max(1, n_test)
        n_val = min(n_val, n - n_test - 1)
    n_train = n - n_val - n_test
    return {
        "train": sorted(order[:n_train]),
        "val": sorted(order[n_train : n_train + n_val]),
        "test": sorted(order[n_train + n_val :]),
    }


# ----------------------------------------------------------------------- `folder` datasets


@dataclasses.dataclass(frozen=True)
class FolderOptions(DatasetOptions):
    card: str = "card.yaml"
    """Path of the YAML card: absolute, or relative to the data root (`--data-root`), then to
    the working directory. The data sit in the card's folder unless the card sets `root:`."""


def command_data_root() -> Path:
    """The data root of the command (`--data-root`), else $MISSBENCH_DATA, else ./data: where
    class-level code (a sweep's validation, before any dataset is open) looks for a card."""
    import os

    return current_data_root() or Path(os.environ.get("MISSBENCH_DATA", "data"))


def resolve_card_path(card: str, data_root: Path | None = None) -> Path:
    """The card file `card` names: an absolute path as it is; a relative one under the data
    root (`data_root`, else the command's, else $MISSBENCH_DATA or ./data), then under the
    working directory. Not found: one line naming every place it looked."""
    path = Path(str(card)).expanduser()
    if path.is_absolute():
        candidates = [path]
    else:
        root = data_root or command_data_root()
        candidates = [root / path, path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = " and ".join(str(c.absolute()) for c in dict.fromkeys(candidates))
    raise DatasetNotFoundError(
        f"folder: card {str(card)!r} not found (looked for {looked}; a relative path is "
        "resolved against --data-root, then the working directory); pass --dataset "
        "'folder[card=PATH/card.yaml]' with the card beside your <modality>/ and labels/ "
        "folders (format: datasets/folder.py)"
    )


@register_dataset("folder")
class FolderDataset(TileDataset):
    """Your own co-registered rasters: a folder per modality + labels, described by a YAML card."""

    Options: ClassVar[type[DatasetOptions]] = FolderOptions
    MODALITIES: ClassVar[tuple[str, ...]] = ()
    LAYOUT = (
        "<folder>/card.yaml + <folder>/<modality>/<id>.tif per modality + "
        "<folder>/<labels>/<id>.png, run with --dataset 'folder[card=<folder>/card.yaml]' "
        "(card format in datasets/folder.py)"
    )

    @classmethod
    def modalities_for(cls, options: DatasetOptions) -> tuple[str, ...]:
        card = load_card(resolve_card_path(getattr(options, "card", "card.yaml")))
        return tuple(m.name for m in card.modalities)

    @classmethod
    def report_name(cls, options: DatasetOptions) -> str:
        """The card's `name`: a user's data are named by their card, not as `folder`."""
        return load_card(resolve_card_path(getattr(options, "card", "card.yaml"))).name

    @classmethod
    def files_read(cls, options: DatasetOptions) -> Mapping[str, Path]:
        """The card: its bytes are part of the run's id (its tiles: `data_digest`)."""
        return {"card": resolve_card_path(getattr(options, "card", "card.yaml"))}

    @classmethod
    def data_digest(cls, options: DatasetOptions) -> str:
        """Every file of every split the card resolves (each modality raster and label of each
        tile, with the split it is in), by path relative to the data folder and bytes: a user
        edits their own tiles in place, so an edited, replaced or added tile is another run.
        Resolved as a run opens them (a missing file is the same one-line error); per-file
        digests are cached (`datasets/files/data_digest.py`)."""
        splits = [cls(command_data_root(), split, options) for split in cls.SPLITS]
        files = [
            ((data.split, tile.id, role), path)
            for data in splits
            for tile in data.tiles
            for role, path in (*tile.sources, (MASK, tile.label))
        ]
        first = splits[0]
        return data_digest(first.data_dir, files, first._cache.directory / DIGESTS_FILE)

    def build_card(self) -> Card:
        self.card_path = resolve_card_path(getattr(self.options, "card", "card.yaml"), self.root)
        return load_card(self.card_path)

    def locate_data_dir(self) -> Path:
        base = (self.card_path.parent / self.card.root).resolve()
        if not base.is_dir():
            raise self.not_found("no data folder", base)
        missing = [m.folder for m in self.card.modalities if not (base / m.folder).is_dir()]
        if not (base / self.card.labels.folder).is_dir():
            missing.append(self.card.labels.folder)
        if missing:
            raise self.not_found(f"missing folder(s) {', '.join(f + '/' for f in missing)}", base)
        return base

    def cache_base(self) -> Path:
        return self.data_dir


# ------------------------------------------------------------- built-in cards (presets)

ISPRS_CLASSES = ("impervious_surfaces", "building", "low_vegetation", "tree", "car", "clutter")
ISPRS_PALETTE = (
    (255, 255, 255),
    (0, 0, 255),
    (0, 255, 255),
    (0, 255, 0),
    (255, 255, 0),
    (255, 0, 0),
)

REAL_POTSDAM_MINI_CARD: dict[str, Any] = {
    "name": "real_potsdam_mini",
    "description": "SMOKE TEST ONLY: two real 512 px ISPRS Potsdam RGB + DSM patches",
    "root": "potsdam_multisenseseg",
    "modalities": {
        "optical": {"folder": "optical", "channels": 3, "description": "R, G, B (uint8)"},
        "dsm": {"folder": "dsm", "channels": 1, "description": "surface height (rescaled DSM)"},
    },
    "labels": {"folder": "labels", "encoding": "index"},
    "classes": list(ISPRS_CLASSES),
    "palette": [list(c) for c in ISPRS_PALETTE],
    "eval_classes": [0, 1, 2, 3, 4],
    "label_set": "isprs6:full",
    "splits": {"train": ["00000"], "val": ["00001"], "test": ["00001"]},
}


@register_dataset("real_potsdam_mini")
class RealPotsdamMini(TileDataset):
    """Smoke test on 2 real Potsdam RGB+DSM patches (train 00000, val/test 00001); not a result."""

    MODALITIES = ("optical", "dsm")
    DIRNAME = "potsdam_multisenseseg"
    LAYOUT = (
        "<data-root>/potsdam_multisenseseg/{optical,dsm}/0000{0,1}.tif + labels/0000{0,1}.png "
        "(the project's shared real samples: --data-root <repo>/../shared/data/real)"
    )
    SOURCE = "research-use samples; never copied into the repository"

    def build_card(self) -> Card:
        return card_from_mapping({**REAL_POTSDAM_MINI_CARD, "root": "."}, "real_potsdam_mini")
