"""A finished run as a self-describing model: weights and a card, usable without the dataset.

Every finished run keeps `model.safetensors` (the weights the default selection rule, full_val,
chose; another rule's are `load_model(run_dir, selection=<rule>)`) and `model.json` (the card:
method, label, hyperparameters, the dataset spec (modalities, bands, normalisation statistics,
classes, palette, ignore index), the class shares of its training labels, the modalities it
was trained on, the evaluation window, every rule's chosen step, commit and library versions).
`load_model(folder)` reads that folder where it is (copied or moved anywhere, it loads the same),
checks the card against its schema (`benchmark.run.card.ModelCard`: format, method, modalities,
bands, standardisation, classes, window, batch, overlap, backbone and hyperparameters) before
anything is built, refuses special files without opening them and weights whose tensors do not
match the built model, each with one line; it rebuilds the method from the card alone and
returns a `DeployedModel`:
called, or its `predict` / `predict_proba`, on raw rasters (NumPy arrays or torch tensors, one
image or a batch) of any non-empty subset of those modalities, with the nodata rule of the
`predict` command.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from benchmark.core.hparams import Params
from benchmark.core.method import Method, TrainContext, evaluation_mode
from benchmark.core.plugins import METHODS
from benchmark.core.records import SELECTION_FULL_VAL
from benchmark.core.spec import DatasetSpec
from benchmark.core.weights import NONE
from benchmark.data.transforms import Normalizer
from benchmark.run.card import ModelCard, check_regular_file, read_card
from benchmark.run.inference import scene_grid, sliding_window_logits
from benchmark.run.store import LEGACY_MODEL, MODEL, MODEL_CARD, RunStore
from benchmark.system.errors import BenchmarkError, describe

NODATA = 255
"""Label of pixels without a prediction: nodata (NaN, or the nodata value) in any input. 255 is
never a class index."""

SHAPES = "[C, H, W] or a batch [N, C, H, W]"


def nodata_mask(data: np.ndarray, nodata: float | None = None) -> np.ndarray:
    """Pixels [..., H, W] that are nodata in any band (axis -3): non-finite, or equal to `nodata`.

    The one nodata rule of `predict` (a GeoTIFF's nodata value) and `DeployedModel` (the
    `nodata` argument): those pixels of `data` (float, changed in place) become NaN in every
    band, which the normaliser fills with the band's mean, and their label is `NODATA`.
    """
    bad = ~np.isfinite(data).all(-3)
    if nodata is not None and np.isfinite(nodata):
        bad |= (data == np.float32(nodata)).any(-3)
    data[np.broadcast_to(np.expand_dims(bad, -3), data.shape)] = np.nan
    return bad


def _as_array(name: str, value: Any, bands: int) -> np.ndarray:
    """One modality's input as a NumPy array of numbers [C, H, W] or [N, C, H, W], or one line
    naming what was expected."""
    expected = f"{name}: expected a numeric array {SHAPES} with C = {bands}"
    if isinstance(value, Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise BenchmarkError(f"{expected}, got a tensor of {value.dtype}")
        value = value.detach().cpu()
        array = (value.float() if value.is_floating_point() else value).numpy()
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError):  # ragged nested lists
            raise BenchmarkError(
                f"{expected}, got a {type(value).__name__} that is not a rectangular array"
            ) from None
    if array.dtype.kind not in "iuf":
        kind = f"array of {array.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
        raise BenchmarkError(f"{expected}, got {'an' if kind[0] in 'aeiou' else 'a'} {kind}")
    if array.ndim not in (3, 4):
        raise BenchmarkError(f"{expected}, got shape {array.shape}")
    if array.size == 0:
        raise BenchmarkError(f"{expected}, got the empty shape {array.shape}")
    if array.shape[-3] != bands:
        raise BenchmarkError(
            f"{name}: {array.shape[-3]} band(s) (axis -3 of shape {array.shape}), the model "
            f"expects {bands}"
        )
    return array


@dataclass
class DeployedModel:
    """A trained method with what it needs to be applied to raw rasters.

    Callable like a segmentation_models_pytorch model, but on raw values and any non-empty
    subset of its modalities: `model({"optical": x})` returns labels. Each input is a NumPy
    array or a torch tensor, one image [C, H, W] or a batch [N, C, H, W] (all inputs alike,
    co-registered: the same N, H and W); integer or floating-point values in the units the
    run was trained on. A pixel that is nodata in any input (NaN, infinite, or equal to
    `nodata`) is labelled `NODATA` (255) and has NaN probabilities, as `predict` writes it.
    Outputs are NumPy arrays for NumPy inputs, tensors on the inputs' device for tensors.
    """

    method: Method
    spec: DatasetSpec
    card: dict[str, Any]
    device: torch.device

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities the model was trained on (inputs may hold any non-empty subset)."""
        return tuple(self.card["train_modalities"])

    def check(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """The inputs as NumPy arrays, after refusing what the model cannot take, with one line
        naming what was expected: not a mapping, no or unknown modalities, non-numeric, empty or
        wrongly shaped arrays, a wrong band count, inputs that differ in batch or size."""
        if not isinstance(inputs, Mapping):
            raise BenchmarkError(
                f"inputs: expected a mapping of modality to array, e.g. {{'optical': array}}, "
                f"got {type(inputs).__name__}; this model takes {', '.join(self.modalities)}"
            )
        unknown = sorted(str(name) for name in inputs if name not in self.modalities)
        if unknown or not inputs:
            raise BenchmarkError(
                f"modalities {unknown or '(none)'}: this model takes a non-empty subset of "
                f"{', '.join(self.modalities)}"
            )
        arrays = {
            name: _as_array(name, value, self.spec.modality(name).channels)
            for name, value in inputs.items()
        }
        sizes = {name: (*a.shape[:-3], *a.shape[-2:]) for name, a in arrays.items()}
        if len(set(sizes.values())) > 1:
            shapes = ", ".join(f"{name} {arrays[name].shape}" for name in arrays)
            raise BenchmarkError(
                f"inputs differ in batch or size ({shapes}); co-registered inputs share N, H and W"
            )
        height, width = next(iter(sizes.values()))[-2:]
        thin = thin_side(height, width, self.card["window"])
        if thin is not None:
            raise BenchmarkError(f"inputs of {height} x {width} px {thin}")
        return arrays

    def normalise(self, raw: Mapping[str, np.ndarray]) -> dict[str, Tensor]:
        """Raw rasters [C, H, W] -> normalised tensors on the model's device."""
        normed = Normalizer(self.spec)(dict(raw))
        return {
            k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for k, v in normed.items()
        }

    def _scene_logits(self, raw: Mapping[str, np.ndarray]) -> Tensor:
        """Class logits [K, H, W] of one scene (sliding windows, as the harness evaluates)."""
        with evaluation_mode(self.method):
            return sliding_window_logits(
                self.method.predict,
                self.normalise(raw),
                self.spec.num_classes,
                window=self.card["window"],
                overlap=self.card["overlap"],
                batch_size=self.card["batch_size"],
            )

    def _forward(
        self, inputs: Mapping[str, Any], nodata: float | None
    ) -> tuple[Tensor, np.ndarray, bool]:
        """Logits [N, K, H, W], the nodata mask [N, H, W] and whether the inputs were batched."""
        arrays = self.check(inputs)
        batched = next(iter(arrays.values())).ndim == 4
        invalid = None
        raw = {}
        for name, array in arrays.items():
            data = np.array(array if batched else array[None], dtype=np.float32)
            bad = nodata_mask(data, nodata)
            invalid = bad if invalid is None else invalid | bad
            raw[name] = data
        scenes = [{k: v[i] for k, v in raw.items()} for i in range(len(invalid))]
        return torch.stack([self._scene_logits(scene) for scene in scenes]), invalid, batched

    @staticmethod
    def _like(output: Tensor, inputs: Mapping[str, Any], batched: bool) -> np.ndarray | Tensor:
        """`output` [N, ...] without N for unbatched inputs; a tensor on the first tensor
        input's device when the inputs are tensors, else a NumPy array."""
        output = output if batched else output[0]
        first = next(iter(inputs.values()))
        if isinstance(first, Tensor):
            return output.to(first.device)
        return output.cpu().numpy()

    def logits(self, inputs: Mapping[str, Any], nodata: float | None = None) -> np.ndarray | Tensor:
        """Class logits [K, H, W] (or [N, K, H, W]) from raw inputs; nodata pixels hold the
        logits of the mean fill."""
        logits, _, batched = self._forward(inputs, nodata)
        return self._like(logits, inputs, batched)

    def predict_proba(
        self, inputs: Mapping[str, Any], nodata: float | None = None
    ) -> np.ndarray | Tensor:
        """Class probabilities [K, H, W] (or [N, K, H, W]), float32, NaN at nodata pixels."""
        logits, invalid, batched = self._forward(inputs, nodata)
        probs = torch.softmax(logits, 1)
        mask = torch.from_numpy(invalid).to(probs.device)
        probs = probs.masked_fill(mask[:, None], float("nan"))
        return self._like(probs, inputs, batched)

    def predict(
        self, inputs: Mapping[str, Any], nodata: float | None = None
    ) -> np.ndarray | Tensor:
        """Class indices [H, W] (or [N, H, W]), uint8, `NODATA` (255) where any input is
        nodata."""
        logits, invalid, batched = self._forward(inputs, nodata)
        labels = logits.argmax(1).to(torch.uint8)
        labels = labels.masked_fill(torch.from_numpy(invalid).to(labels.device), NODATA)
        return self._like(labels, inputs, batched)

    def __call__(
        self, inputs: Mapping[str, Any], nodata: float | None = None
    ) -> np.ndarray | Tensor:
        """`predict`: labels, as a segmentation model called on a batch returns its output."""
        return self.predict(inputs, nodata)


def inference_hparams(cls: type[Method], pairs: Iterable[Sequence[Any]]) -> Params:
    """The hyperparameters to rebuild a trained method with: its own, encoder weights `none`
    (the trained weights are loaded next: no download), names this version no longer knows
    dropped and new ones at their defaults (runs made by earlier versions)."""
    space = cls.hparam_space()
    known = {k: v for k, v in pairs if k in space}
    values = {name: hp.default for name, hp in space.items()} | known | {"weights": NONE}
    return Params(values)


class FolderStore(RunStore):
    """The store's reading of one model folder, wherever it is: the folder itself is the run
    directory (never `<folder>/../../runs/<name>`, which may be another run of that name)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.folder = folder

    def run_dir(self, run_id: str) -> Path:
        """The folder, whatever `run_id` is."""
        return self.folder


def build_method(card: ModelCard) -> Method:
    """The card's method, untrained, on the CPU (the card was checked: nothing in it can make
    this fetch, read or allocate beyond its declared bounds)."""
    context = TrainContext(
        total_steps=card.steps,
        class_frequencies=card.class_frequencies,
        train_modalities=card.train_modalities,
    )
    cls = METHODS.get(card.method)
    try:
        return cls(card.dataset_spec, inference_hparams(cls, card.hparams.items()), context)
    except ValueError as error:  # a method's own rule on its hyperparameters or modalities
        raise BenchmarkError(
            f"model card of {card.label}: the method refuses it ({describe(error)})"
        ) from None


DIFF_NAMES = 3
"""Tensors named per kind of difference in `check_tensors`' one line."""


def check_tensors(weights: Mapping[str, Any], method: Method, path: Path) -> None:
    """Refuse, with a one-line diff, weights whose tensor names or shapes differ from the state
    dict of the method their card describes (missing, extra, wrong shape, first few named)."""
    expected = {name: tuple(t.shape) for name, t in method.state_dict().items()}
    if not isinstance(weights, Mapping) or not all(isinstance(t, Tensor) for t in weights.values()):
        raise BenchmarkError(f"{path}: not a table of tensor name -> tensor")
    found = {str(name): tuple(t.shape) for name, t in weights.items()}
    missing = [name for name in expected if name not in found]
    extra = [name for name in found if name not in expected]
    wrong = [
        f"{name} {list(found[name])} (the card's model: {list(shape)})"
        for name, shape in expected.items()
        if name in found and found[name] != shape
    ]
    parts = []
    for kind, names in (("missing", missing), ("extra", extra), ("wrong shape", wrong)):
        if names:
            more = f", and {len(names) - DIFF_NAMES} more" if len(names) > DIFF_NAMES else ""
            parts.append(f"{len(names)} {kind}: {', '.join(names[:DIFF_NAMES])}{more}")
    if parts:
        raise BenchmarkError(
            f"{path}: tensors do not fit the model its card describes ({'; '.join(parts)}); "
            "the weights and the card's backbone, bands, classes or hyperparameters disagree"
        )


def thin_side(height: int, width: int, window: int) -> str | None:
    """What is wrong with a scene the windows cannot pad, or None: a side shorter than the window
    is padded by reflection up to a multiple of 32, which needs more pixels than the padding (a
    side of 1 px is repeated instead). The CLI's `predict` and the Python API share the rule."""
    if min(height, width) <= 1:
        return None
    full_h, full_w, *_ = scene_grid(height, width, window, 0.0)
    for side, full in ((height, full_h), (width, full_w)):
        if full - side >= side:
            return (
                f"has a side of {side} px, too thin to pad by reflection to {full} px for the "
                f"run's {window} px windows; give at least 17 px a side (or exactly 1)"
            )
    return None


def load_model(
    run_dir: Path, device: torch.device | str = "cpu", selection: str = SELECTION_FULL_VAL
) -> DeployedModel:
    """The model of a finished run's folder, rebuilt from its card and weights alone: the
    checkpoint the `selection` rule chose (the default rule's is the deployed model).

    The folder is read where it is (a copy moved out of `<out>/runs/` loads the same). Its card
    is checked against the card schema (`benchmark.run.card.ModelCard`) before anything is
    built; the weights file must be a regular file (never opened otherwise) whose tensors match
    the built model's names and shapes. Each refusal is one line.
    """
    folder = Path(run_dir)
    if not folder.is_dir():
        what = "no such folder" if not folder.exists() else "not a folder"
        raise BenchmarkError(
            f"{folder}: {what}; expected a model folder holding {MODEL_CARD} and {MODEL} "
            "(a finished run: <out>/runs/<run_id>)"
        )
    card, raw = read_card(folder / MODEL_CARD)
    store, run_id = FolderStore(folder), folder.name
    path = store.model_path(run_id, selection)  # one line when the run kept no such model
    if path.name == LEGACY_MODEL and not os.path.lexists(path):
        path = folder / MODEL  # neither: name the file this version writes
    check_regular_file(path, "model weights")
    weights = store.load_model(run_id, selection)
    method = build_method(card)
    check_tensors(weights, method, path)
    method.load_state_dict(weights)
    if selection != SELECTION_FULL_VAL:
        raw = {**raw, "selected_step": raw["selected_steps"][selection]}
    device = torch.device(device)
    method.to(device, memory_format=torch.channels_last)
    method.eval()
    return DeployedModel(method, card.dataset_spec, raw, device)
