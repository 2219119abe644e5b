"""A finished run's model card (`model.json`): what rebuilding and applying its model needs.

The run writes the card when it saves its selected weights (`model_card`); `benchmark.deploy`
reads it back through `read_card`, which checks it against the typed, versioned schema
`ModelCard` before anything is built from it: a card is input like any other, and a folder
copied from elsewhere may hold anything.

Format 1 is the only format so far: every card ever written says `"format": 1`, and a card
without the field is read as format 1 (the fields have only been added to since:
`selected_steps` and a modality's `kind` are optional, as cards written before them lack them).
A card of another format, or with a field format 1 does not know, is refused with one line.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.core.hparams import Params
from benchmark.core.plugins import METHODS
from benchmark.core.records import SELECTION_FULL_VAL, RunSpec
from benchmark.core.spec import MODALITY_KINDS, DatasetSpec
from benchmark.data.pipeline import RunData
from benchmark.system.errors import BenchmarkError, describe
from benchmark.system.provenance import git_commit, versions

CARD_FORMAT = 1
"""The format this version writes, and the only one it reads."""

REQUIRED_FIELDS = (
    "run_id",
    "method",
    "label",
    "hparams",
    "train_modalities",
    "dataset_spec",
    "class_frequencies",
    "steps",
    "selected_step",
    "window",
    "overlap",
    "batch_size",
)
OPTIONAL_FIELDS = ("format", "dataset", "dataset_options", "selected_steps", "commit", "versions")
"""Fields a card may lack: `format` (read as 1), `selected_steps` (cards written before every
rule kept its model) and the provenance that rebuilding does not need."""
SPEC_FIELDS = (
    "name",
    "modalities",
    "classes",
    "palette",
    "ignore_index",
    "eval_classes",
    "label_set",
    "description",
    "tier_thresholds",
)
MODALITY_FIELDS = ("name", "channels", "mean", "std", "description")
MODALITY_OPTIONAL = ("kind",)

MAX_CARD_BYTES = 16 << 20
"""A card is a few kilobytes; a bigger file is not one (and is never read whole)."""
MAX_BANDS = 4096
"""Bands of one modality (hyperspectral sensors have a few hundred)."""
MAX_CLASSES = 255
"""Labels are written as uint8 and 255 is nodata (`benchmark.deploy.model.NODATA`)."""
MIN_WINDOW, MAX_WINDOW = 32, 8192
"""The evaluation window's side: at least the encoders' stride, at most a size one batch can
hold."""
MAX_BATCH = 1024
MAX_BATCH_PIXELS = 1 << 28
"""batch_size x window^2: what one batch of windows may hold (16 windows of 4096 px)."""
MAX_STEPS = 10**9


def model_card(spec: RunSpec, data: RunData, chosen: Mapping[str, int]) -> dict[str, Any]:
    """What rebuilding and applying the run's model needs, as JSON. The model is the default
    selection rule's; `selected_steps` holds every rule's choice (rule -> step), whose weights
    the store keeps beside it (`RunStore.model_path`)."""
    return {
        "format": CARD_FORMAT,
        "run_id": spec.run_id,
        "method": spec.method,
        "label": spec.label,
        "hparams": spec.hparams.pairs(),
        "train_modalities": list(spec.train_modalities),
        "dataset": spec.dataset,
        "dataset_options": spec.dataset_options.pairs(),
        "dataset_spec": data.train.spec.to_json(),
        "class_frequencies": list(data.frequencies),
        "steps": spec.steps,
        "selected_step": chosen[SELECTION_FULL_VAL],
        "selected_steps": dict(chosen),
        "window": spec.window,
        "overlap": spec.eval_overlap,
        "batch_size": spec.eval_batch_size,
        "commit": git_commit(),
        "versions": versions(),
    }


@dataclass(frozen=True)
class ModelCard:
    """A model card checked against format `CARD_FORMAT`: what rebuilding its model needs.

    `hparams` are the method's own hyperparameters as the card gives them, each checked against
    the method's declared space (type and range); names this version no longer knows are dropped
    (runs made by earlier versions), missing ones take their defaults when the model is built.
    """

    format: int
    run_id: str
    method: str
    label: str
    hparams: Params
    train_modalities: tuple[str, ...]
    dataset_spec: DatasetSpec
    class_frequencies: tuple[float, ...]
    steps: int
    selected_step: int
    selected_steps: dict[str, int] | None
    window: int
    overlap: float
    batch_size: int

    @classmethod
    def from_json(cls, data: Any, source: str = "model.json") -> ModelCard:
        """The card in `data` (as JSON read it), or one line naming the field, its value and
        what was expected."""
        return _CardReader(source).card(data)


def check_regular_file(path: Path, what: str) -> os.stat_result:
    """`path`'s status when it is a regular file (links followed), else one line, without ever
    opening it: a FIFO would block a reader forever, a device never ends."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise BenchmarkError(f"{path}: no {what} there") from None
    except OSError as error:
        raise BenchmarkError(f"{path}: unreadable {what} ({describe(error)})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = _file_kind(info.st_mode)
        raise BenchmarkError(f"{path}: {kind}, not a regular file; expected the {what} file")
    return info


def read_card(path: Path) -> tuple[ModelCard, dict[str, Any]]:
    """The model card at `path`, checked (`ModelCard.from_json`), and the JSON as written.

    Refused with one line: a missing card, anything but a regular file, a file over
    `MAX_CARD_BYTES`, text that is not JSON (or repeats a key), and every schema violation.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise BenchmarkError(
            f"{path.parent}: no model card ({path.name}); only finished runs made by this "
            "version keep one (rerun the run to make it)"
        )
    info = check_regular_file(path, "model card")
    if info.st_size > MAX_CARD_BYTES:
        raise BenchmarkError(
            f"{path}: {info.st_size} bytes; expected a model card of at most {MAX_CARD_BYTES} bytes"
        )
    try:
        data = json.loads(path.read_bytes().decode("utf-8"), object_pairs_hook=_unique_keys)
    except (OSError, ValueError, RecursionError) as error:
        raise BenchmarkError(f"{path}: unreadable model card ({describe(error)})") from None
    return ModelCard.from_json(data, str(path)), data


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refusing a key given twice (JSON would silently keep the last)."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"key {key!r} given twice")
        data[key] = value
    return data


def _file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    return next((word for test, word in kinds.items() if test(mode)), "a special file")


def _show(value: Any, limit: int = 60) -> str:
    """`value` as a short repr for a one-line message (never the whole of a long list)."""
    if isinstance(value, list | dict) and len(value) > 20:
        return f"<{type(value).__name__} of {len(value)} items>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kind(value: Any) -> str:
    """The JSON type of `value`, in words."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def local_timm_model(name: str) -> bool:
    """Whether `name` is one of the model architectures of the installed timm (optionally with a
    `.tag`): no `hf-hub:` or `local-dir:` source, nothing timm would fetch or read."""
    import timm

    base, _, tag = name.partition(".")
    return re.fullmatch(r"\w*", tag) is not None and base in set(timm.list_models())


class _CardReader:
    """Checks a card's fields one by one; every refusal names the field, its value and what was
    expected, prefixed by where the card is."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, value: Any, expected: str) -> BenchmarkError:
        return BenchmarkError(f"{self.source}: {field}={_show(value)}: expected {expected}")

    def mapping(self, field: str, value: Any, required: tuple, optional: tuple = ()) -> dict:
        """A JSON object with every `required` key and no key outside `required + optional`."""
        if not isinstance(value, dict):
            what = f"a JSON object of {', '.join(required)}"
            raise BenchmarkError(f"{self.source}: {field} is {_kind(value)}; expected {what}")
        unknown = sorted(str(k) for k in value if k not in required + optional)
        if unknown:
            raise BenchmarkError(
                f"{self.source}: {field} has unknown field(s) {', '.join(map(repr, unknown))}; "
                f"format {CARD_FORMAT} knows {', '.join(sorted(required + optional))}"
            )
        missing = [k for k in required if k not in value]
        if missing:
            raise BenchmarkError(
                f"{self.source}: {field} lacks field(s) {', '.join(missing)}; format "
                f"{CARD_FORMAT} needs them"
            )
        return value

    def integer(self, field: str, value: Any, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(field, value, f"an integer in [{low}, {high}]")
        return value

    def number(self, field: str, value: Any, low: float, high: float, *, open_high=False) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and low <= value and (value < high or not open_high)
        if not ok or (not open_high and value > high):
            bracket = ")" if open_high else "]"
            raise self.fail(field, value, f"a finite number in [{low:g}, {high:g}{bracket}")
        return float(value)

    def text(self, field: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.fail(field, value, "a string")
        return value

    def array(self, field: str, value: Any, size: int | None = None, what: str = "") -> list:
        if not isinstance(value, list) or (size is not None and len(value) != size):
            count = f"a list of {size}" if size is not None else "a list"
            raise self.fail(field, value, f"{count}{' ' + what if what else ''}")
        return value

    # ------------------------------------------------------------------------------ the card
    def card(self, data: Any) -> ModelCard:
        if not isinstance(data, dict):
            raise BenchmarkError(
                f"{self.source}: the card is {_kind(data)}; expected a JSON object of field -> "
                "value (a MissBench model card)"
            )
        version = data.get("format", 1)  # cards without the field: format 1 (all ever written)
        if isinstance(version, bool) or version != CARD_FORMAT or not isinstance(version, int):
            raise self.fail("format", version, f"{CARD_FORMAT}, the card format this version reads")
        self.mapping("the card", data, REQUIRED_FIELDS, OPTIONAL_FIELDS)
        for name in ("dataset", "commit"):
            if name in data:
                self.text(name, data[name])
        if "dataset_options" in data:
            self.array("dataset_options", data["dataset_options"], what="of [name, value] pairs")
        if "versions" in data and not isinstance(data["versions"], dict):
            raise self.fail("versions", data["versions"], "an object of library -> version")
        method = self.text("method", data["method"])
        if method not in METHODS:
            raise self.fail("method", method, f"a method of this suite ({', '.join(METHODS)})")
        spec = self.dataset_spec(data["dataset_spec"])
        window = self.integer("window", data["window"], MIN_WINDOW, MAX_WINDOW)
        batch = self.integer("batch_size", data["batch_size"], 1, MAX_BATCH)
        if batch * window * window > MAX_BATCH_PIXELS:
            raise self.fail(
                "batch_size",
                batch,
                f"batch_size x window^2 <= {MAX_BATCH_PIXELS} pixels (window={window})",
            )
        steps = self.integer("steps", data["steps"], 1, MAX_STEPS)
        return ModelCard(
            format=CARD_FORMAT,
            run_id=self.text("run_id", data["run_id"]),
            method=METHODS.canonical(method),
            label=self.text("label", data["label"]),
            hparams=self.hparams(method, data["hparams"]),
            train_modalities=self.train_modalities(data["train_modalities"], spec),
            dataset_spec=spec,
            class_frequencies=self.frequencies(data["class_frequencies"], spec),
            steps=steps,
            selected_step=self.integer("selected_step", data["selected_step"], 0, MAX_STEPS),
            selected_steps=self.selected_steps(data.get("selected_steps")),
            window=window,
            overlap=self.number("overlap", data["overlap"], 0.0, 1.0, open_high=True),
            batch_size=batch,
        )

    def hparams(self, method: str, pairs: Any) -> Params:
        """The method's hyperparameters the card names, each valid for its declared space; a
        `*backbone` must name one of the installed timm's architectures."""
        space = METHODS.get(method).hparam_space()
        self.array("hparams", pairs, what="of [name, value] pairs")
        values: dict[str, Any] = {}
        for pair in pairs:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise self.fail("hparams", pair, "[name, value] pairs, the name a string")
            name, value = pair
            if name in values:
                raise self.fail(f"hparams.{name}", value, "each hyperparameter once")
            if name not in space:  # a name this version no longer knows: dropped
                continue
            try:
                values[name] = space[name].validate(name, value)
            except BenchmarkError as error:
                raise BenchmarkError(f"{self.source}: hparams: {error} (method {method})") from None
            if name.endswith("backbone") and values[name] and not local_timm_model(values[name]):
                raise self.fail(
                    f"hparams.{name}",
                    value,
                    "an architecture of the installed timm (timm.list_models(), e.g. resnet18); "
                    "hub and local-dir sources are never fetched",
                )
        return Params(values)

    def dataset_spec(self, data: Any) -> DatasetSpec:
        """The dataset description: modalities with their bands and standardisation, classes
        with their palette."""
        self.mapping("dataset_spec", data, SPEC_FIELDS)
        for name in ("name", "label_set", "description"):
            self.text(f"dataset_spec.{name}", data[name])
        modalities = data["modalities"]
        if not isinstance(modalities, list) or not modalities:
            raise self.fail("dataset_spec.modalities", modalities, "a non-empty list")
        for index, modality in enumerate(modalities):
            self.modality(f"dataset_spec.modalities[{index}]", modality)
        classes = data["classes"]
        if not isinstance(classes, list) or not 1 <= len(classes) <= MAX_CLASSES:
            raise self.fail("dataset_spec.classes", classes, f"a list of 1 to {MAX_CLASSES} names")
        for index, name in enumerate(classes):
            self.text(f"dataset_spec.classes[{index}]", name)
        palette = self.array(
            "dataset_spec.palette", data["palette"], len(classes), "colours, one per class"
        )
        for index, colour in enumerate(palette):
            field = f"dataset_spec.palette[{index}]"
            self.array(field, colour, 3, "values (red, green, blue)")
            for value in colour:
                self.integer(field, value, 0, 255)
        self.integer("dataset_spec.ignore_index", data["ignore_index"], -(2**31), 2**31 - 1)
        for value in self.array("dataset_spec.eval_classes", data["eval_classes"]):
            self.integer("dataset_spec.eval_classes", value, 0, len(classes) - 1)
        for value in self.array("dataset_spec.tier_thresholds", data["tier_thresholds"], 2):
            self.number("dataset_spec.tier_thresholds", value, 0.0, 1.0)
        try:
            return DatasetSpec.from_json(data)
        except ValueError as error:  # the spec's own rules (unique names, kinds, ...)
            raise BenchmarkError(f"{self.source}: dataset_spec: {error}") from None

    def modality(self, field: str, data: Any) -> None:
        """One modality: a name, its band count and per-band mean and std (std > 0, finite)."""
        self.mapping(field, data, MODALITY_FIELDS, MODALITY_OPTIONAL)
        self.text(f"{field}.name", data["name"])
        self.text(f"{field}.description", data["description"])
        if "kind" in data and data["kind"] not in ("", *MODALITY_KINDS):
            raise self.fail(f"{field}.kind", data["kind"], f"one of {', '.join(MODALITY_KINDS)}")
        bands = self.integer(f"{field}.channels", data["channels"], 1, MAX_BANDS)
        for stat_name in ("mean", "std"):
            values = self.array(f"{field}.{stat_name}", data[stat_name])
            if len(values) != bands:
                raise self.fail(
                    f"{field}.{stat_name}", values, f"{bands} values, one per band (channels)"
                )
            for value in values:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                ok = ok and math.isfinite(value) and (stat_name == "mean" or value > 0)
                if not ok:
                    need = "finite numbers" if stat_name == "mean" else "finite numbers > 0"
                    raise self.fail(f"{field}.{stat_name}", values, need)

    def train_modalities(self, value: Any, spec: DatasetSpec) -> tuple[str, ...]:
        names = spec.modality_names
        ok = isinstance(value, list) and value and len(set(map(str, value))) == len(value)
        if not ok or not all(isinstance(v, str) and v in names for v in value):
            raise self.fail(
                "train_modalities",
                value,
                f"a non-empty list of distinct modalities of dataset_spec ({', '.join(names)})",
            )
        return tuple(value)

    def frequencies(self, value: Any, spec: DatasetSpec) -> tuple[float, ...]:
        classes = spec.num_classes
        self.array("class_frequencies", value, classes, f"shares, one per class ({classes})")
        return tuple(self.number("class_frequencies", v, 0.0, 1.0) for v in value)

    def selected_steps(self, value: Any) -> dict[str, int] | None:
        if value is None:
            return None
        ok = isinstance(value, dict) and all(isinstance(k, str) and k.isidentifier() for k in value)
        if not ok:
            raise self.fail("selected_steps", value, "an object of rule name -> step")
        return {k: self.integer(f"selected_steps.{k}", v, 0, MAX_STEPS) for k, v in value.items()}
