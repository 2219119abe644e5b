"""The contract every registered preset honours, parametrised over `PRESETS`: a newly
registered preset is checked here at once, without training anything."""

from __future__ import annotations

import inspect
import json

import pytest

from benchmark.core.method import COMMON_HPARAMS
from benchmark.core.options import NamedConfig
from benchmark.core.plugins import DATASETS
from benchmark.core.presets import PRESETS
from benchmark.core.records import RunSpec
from benchmark.core.weights import create_backbone
from benchmark.run.inference import sliding_window_logits
from benchmark.run.sweep import check_backbones, make_run_spec

SIZE_MULTIPLE = inspect.signature(sliding_window_logits).parameters["size_multiple"].default
"""What every evaluation window is padded to: a crop that is not a multiple gets padded."""


@pytest.fixture(params=PRESETS.names())
def preset(request):
    return PRESETS.get(request.param)


@pytest.mark.parametrize("name", PRESETS.names())
def test_preset_is_registered_under_its_own_name(name):
    """The name in the registry is the one a run spec records (`spec.preset`)."""
    assert PRESETS.get(name).name == name


def test_preset_describes_itself_and_sets_only_common_hyperparameters(preset):
    assert preset.description.strip()
    assert set(preset.hparams) <= set(COMMON_HPARAMS), "a method's own knob in a preset"
    for name, value in preset.hparams.items():
        COMMON_HPARAMS[name].validate(name, value)


def test_preset_has_a_positive_budget_and_validation_cadence(preset):
    assert preset.steps > 0 and preset.val_checks > 0 and preset.eval_batch_size > 0
    assert preset.val_checks <= preset.steps, "more validations than steps"


def test_preset_crop_fits_its_evaluation_windows(preset):
    """The crop and the evaluation window (the crop unless the preset sets one) must be whole
    numbers of the encoder's deepest stride (and of the padding multiple), and the window
    stride under the preset's overlap a whole, positive number of pixels."""
    hparams = {name: hp.default for name, hp in COMMON_HPARAMS.items()} | dict(preset.hparams)
    crop = hparams["crop_size"]
    window = preset.eval_window or crop
    deepest = create_backbone(hparams["backbone"], 3).feature_info.reduction()[-1]
    for side in (crop, window):
        assert side % deepest == 0 and side % SIZE_MULTIPLE == 0, (side, deepest)
    assert 0 <= preset.eval_overlap < 1 and preset.eval_tiles >= 0
    stride = window * (1 - preset.eval_overlap)
    assert stride >= 1 and stride == int(stride), stride


def test_preset_builds_a_valid_baseline_spec_on_synthetic(preset):
    options = DATASETS.get("synthetic").make_options({})
    modalities = DATASETS.get("synthetic").modalities_for(options)
    spec = make_run_spec(
        NamedConfig("baseline"), NamedConfig("synthetic"), 0, preset, preset.steps, modalities
    )
    assert (spec.preset, spec.steps, spec.val_checks) == (
        preset.name,
        preset.steps,
        preset.val_checks,
    )
    assert (spec.eval_overlap, spec.eval_batch_size, spec.eval_tiles) == (
        preset.eval_overlap,
        preset.eval_batch_size,
        preset.eval_tiles,
    )
    assert spec.window == (preset.eval_window or spec.hparams["crop_size"])
    assert all(spec.hparams[k] == v for k, v in preset.hparams.items())
    assert 1 <= spec.val_every <= spec.steps
    check_backbones(spec)  # every backbone it names is a timm model
    assert RunSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
