"""A finished run as a self-describing model: weights and a card, usable without the dataset.

Every finished run keeps `model.safetensors` (the weights the default selection rule, full_val,
chose; another rule's are `load_model(run_dir, selection=<rule>)`) and `model.json` (the card:
method, label, hyperparameters, the dataset spec (modalities, bands, normalisation statistics,
classes, palette, ignore index), the class shares of its training labels, the modalities it
was trained on, the evaluation window, every rule's chosen step, commit and library versions).
`load_model(run_dir)` rebuilds the method from the card alone and returns a `DeployedModel`
whose `predict` takes raw rasters of any non-empty subset of those modalities.
"""

from __future__ import annotations

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
from benchmark.run.inference import sliding_window_logits
from benchmark.run.store import RunStore
from benchmark.system.errors import BenchmarkError


@dataclass
class DeployedModel:
    """A trained method with what it needs to be applied to raw rasters."""

    method: Method
    spec: DatasetSpec
    card: dict[str, Any]
    device: torch.device

    @property
    def modalities(self) -> tuple[str, ...]:
        """The modalities the model was trained on (inputs may hold any non-empty subset)."""
        return tuple(self.card["train_modalities"])

    def check(self, inputs: Mapping[str, Any]) -> None:
        """Refuse inputs the model cannot take, with one line."""
        unknown = sorted(set(inputs) - set(self.modalities))
        if unknown or not inputs:
            raise BenchmarkError(
                f"modalities {unknown or '(none)'}: this model takes a non-empty subset of "
                f"{', '.join(self.modalities)}"
            )
        for name, array in inputs.items():
            bands = self.spec.modality(name).channels
            if np.shape(array)[0] != bands:
                raise BenchmarkError(
                    f"{name}: {np.shape(array)[0]} band(s), the model expects {bands}"
                )

    def normalise(self, raw: Mapping[str, np.ndarray]) -> dict[str, Tensor]:
        """Raw rasters [C, H, W] -> normalised tensors on the model's device."""
        normed = Normalizer(self.spec)(dict(raw))
        return {
            k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device) for k, v in normed.items()
        }

    def logits(self, raw: Mapping[str, np.ndarray]) -> Tensor:
        """Class logits [K, H, W] of one scene (sliding windows, as the harness evaluates)."""
        self.check(raw)
        with evaluation_mode(self.method):
            return sliding_window_logits(
                self.method.predict,
                self.normalise(raw),
                self.spec.num_classes,
                window=self.card["window"],
                overlap=self.card["overlap"],
                batch_size=self.card["batch_size"],
            )

    def predict(self, raw: Mapping[str, np.ndarray]) -> np.ndarray:
        """Class indices [H, W] (uint8) from raw rasters of any non-empty subset of modalities."""
        return self.logits(raw).argmax(0).to(torch.uint8).cpu().numpy()


def inference_hparams(cls: type[Method], pairs: Iterable[Sequence[Any]]) -> Params:
    """The hyperparameters to rebuild a trained method with: its own, encoder weights `none`
    (the trained weights are loaded next: no download), names this version no longer knows
    dropped and new ones at their defaults (runs made by earlier versions)."""
    space = cls.hparam_space()
    known = {k: v for k, v in pairs if k in space}
    values = {name: hp.default for name, hp in space.items()} | known | {"weights": NONE}
    return Params(values)


def load_model(
    run_dir: Path, device: torch.device | str = "cpu", selection: str = SELECTION_FULL_VAL
) -> DeployedModel:
    """The model of a finished run directory, rebuilt from its card and weights alone: the
    checkpoint the `selection` rule chose (the default rule's is the deployed model)."""
    run_dir = Path(run_dir)
    store, run_id = RunStore(run_dir.parent.parent), run_dir.name
    card = store.read_model_card(run_id)
    weights = store.load_model(run_id, selection)  # one line when the run kept no such model
    if selection != SELECTION_FULL_VAL:
        card = {**card, "selected_step": card["selected_steps"][selection]}
    device = torch.device(device)
    spec = DatasetSpec.from_json(card["dataset_spec"])
    context = TrainContext(
        total_steps=card["steps"],
        class_frequencies=tuple(card["class_frequencies"]),
        train_modalities=tuple(card["train_modalities"]),
    )
    cls = METHODS.get(card["method"])
    method = cls(spec, inference_hparams(cls, card["hparams"]), context)
    method.load_state_dict(weights)
    method.to(device, memory_format=torch.channels_last)
    method.eval()
    return DeployedModel(method, spec, card, device)
