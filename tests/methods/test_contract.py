"""The contract every registered method must honour, on 2- and 3-modality datasets.

Parametrised over the registry: a newly registered method is tested here automatically.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.core.method import Method, undeclared
from benchmark.core.plugins import DATASETS, METHODS
from tests.methods.zoo_helpers import build_method, predictions


def distinct_modality_sets(names: list[str], at_most: int = 3) -> list[str]:
    """The first dataset of each modality set (up to `at_most` modalities): a variant that only
    changes how a scene is drawn adds no contract case; four-modality datasets have their own
    test below (15 scenarios per case would double the suite's time)."""
    seen, kept = set(), []
    for name in names:
        cls = DATASETS.get(name)
        modalities = tuple(sorted(cls.modalities_for(cls.make_options({}))))
        if modalities not in seen and len(modalities) <= at_most:
            seen.add(modalities)
            kept.append(name)
    return kept


DATASET_NAMES = distinct_modality_sets(DATASETS.names("synthetic*"))
"""Embedded datasets with 2 and 3 modalities: a new `synthetic*` modality set is covered at
once."""
FOUR_MODALITY_NAMES = [
    n for n in DATASETS.names("synthetic*") if n not in distinct_modality_sets([n], at_most=3)
]


@pytest.fixture(
    params=[(m, d) for m in METHODS.names() for d in DATASET_NAMES], ids=lambda p: f"{p[0]}-{p[1]}"
)
def case(request, data_root):
    """`build_method`'s arguments for one method on one dataset."""
    name, dataset = request.param
    return {"name": name, "dataset": dataset, "data_root": data_root}


def test_update_returns_finite_losses(case):
    method, sampler, _ = build_method(**case)
    for step in range(2):
        losses = method.update(sampler.batch(step), step)
        assert losses and all(np.isfinite(v) for v in losses.values()), losses


def test_predict_every_scenario_shape_and_no_labels(case):
    method, sampler, spec = build_method(**case)
    method.update(sampler.batch(0), 0)
    batch = sampler.batch(1)
    outputs = predictions(method, batch)
    assert len(outputs) == 2 ** len(spec.modality_names) - 1
    b, _, h, w = batch["mask"].shape[0], None, *batch["mask"].shape[-2:]
    for scenario, logits in outputs.items():
        assert logits.shape == (b, spec.num_classes, h, w), scenario
        assert torch.isfinite(logits).all(), scenario


def test_full_and_partial_predictions_differ(case):
    """A method that ignores its inputs would pass the shape test; this one would not."""
    method, sampler, _ = build_method(**case)
    for step in range(2):
        method.update(sampler.batch(step), step)
    outputs = predictions(method, sampler.batch(5))
    values = list(outputs.values())
    assert any(not torch.allclose(values[0], other) for other in values[1:])


def test_same_seed_same_outputs(case):
    results = []
    for _ in range(2):
        method, sampler, _ = build_method(**case, seed=3)
        losses = [method.update(sampler.batch(s), s) for s in range(2)]
        results.append((losses, predictions(method, sampler.batch(7))))
    assert results[0][0] == results[1][0]
    for key in results[0][1]:
        torch.testing.assert_close(results[0][1][key], results[1][1][key], rtol=0, atol=0)


def test_checkpoint_round_trip_resumes_exactly(case):
    method, sampler, _ = build_method(**case, steps=4)
    method.update(sampler.batch(0), 0)
    state = method.checkpoint()
    rng = torch.get_rng_state()
    uninterrupted = [method.update(sampler.batch(s), s) for s in (1, 2)]
    after = predictions(method, sampler.batch(9))

    restored, _, _ = build_method(**case, seed=99, steps=4)  # different init: restore must override
    restored.restore(state)
    torch.set_rng_state(rng)
    resumed = [restored.update(sampler.batch(s), s) for s in (1, 2)]
    assert resumed == uninterrupted
    for key, value in predictions(restored, sampler.batch(9)).items():
        torch.testing.assert_close(value, after[key])


def test_method_documents_itself(case):
    cls = METHODS.get(case["name"])
    assert cls.__doc__ and cls.SUMMARY and cls.MISSING_MODALITY and cls.DEVIATIONS
    for name, hp in cls.hparam_space().items():
        hp.validate(name, hp.default)  # every default lies in its own declared range


@pytest.mark.parametrize("name", METHODS.names())
def test_method_declares_every_required_attribute(name):
    """The recipe's declarations (docs/extending.md, "A method"), by name: `undeclared` lists
    what is left out, so a new method learns it here rather than from a run that diverges."""
    problems = undeclared(METHODS.get(name))
    assert not problems, f"method {name!r} must declare: " + "; ".join(problems)


class _Toy(Method):
    """A stand-in that declares everything but TRAIN_MISSING (never trained)."""

    SUMMARY = "A stand-in."
    MISSING_MODALITY = "zero-fills it"
    PAPER = None
    DEVIATIONS = ("A test stand-in, not a method.",)

    def update(self, batch, step):
        raise NotImplementedError

    def predict(self, inputs):
        raise NotImplementedError


def test_a_method_without_train_missing_is_told_so_by_name():
    (problem,) = undeclared(_Toy)
    assert problem.startswith("TRAIN_MISSING: ") and "--train-missing" in problem

    class Declared(_Toy):
        """The same, with TRAIN_MISSING."""

        TRAIN_MISSING = "trains on complete samples only"

    assert undeclared(Declared) == []

    class OwnFill(Declared):
        """Its own invalid-pixel fill, without saying what it is."""

        def fill_invalid(self, inputs, validity):
            return dict(inputs)

    assert [p.split(":")[0] for p in undeclared(OwnFill)] == ["INVALID_PIXELS"]
    bare = type("Bare", (Method,), {"update": _Toy.update, "predict": _Toy.predict})
    named = [p.split(":")[0] for p in undeclared(bare)]
    assert named == [
        "a docstring", "SUMMARY", "MISSING_MODALITY", "TRAIN_MISSING", "PAPER", "DEVIATIONS"
    ]  # fmt: skip


def test_a_divergence_on_absent_samples_names_train_missing():
    """A method that reads an absent (NaN) modality diverges at step 1; the error says why."""
    from benchmark.run.train import absent_hint

    batch = {"dsm": torch.zeros(2), "available:dsm": torch.tensor([True, False])}
    hint = absent_hint(batch, _Toy)
    assert "without dsm" in hint and "_Toy.TRAIN_MISSING: not declared" in hint
    assert absent_hint({**batch, "available:dsm": torch.tensor([True, True])}, _Toy) == ""


@pytest.fixture(scope="module")
def four_modality_card(tmp_path_factory):
    """A user folder dataset with four modalities of distinct band counts (15 scenarios)."""
    import tifffile
    import yaml
    from PIL import Image

    root = tmp_path_factory.mktemp("four_modalities")
    bands = {"optical": 3, "nir": 1, "dsm": 1, "sar": 2}
    rng = np.random.default_rng(0)
    ids = [f"t{i}" for i in range(5)]
    for name in [*bands, "labels"]:
        (root / name).mkdir()
    for tile in ids:
        labels = rng.integers(0, 3, (64, 64)).astype(np.uint8)
        for name, count in bands.items():
            raster = labels[None] * (0.5 + count) + rng.normal(0, 0.3, (count, 64, 64))
            tifffile.imwrite(
                root / name / f"{tile}.tif", raster.astype(np.float32), photometric="minisblack"
            )
        Image.fromarray(labels).save(root / "labels" / f"{tile}.png")
    card = {
        "name": "four",
        "modalities": {m: {"folder": m, "channels": c} for m, c in bands.items()},
        "labels": {"folder": "labels", "encoding": "index"},
        "classes": ["a", "b", "c"],
        "splits": {"train": ids[:3], "val": ids[3:4], "test": ids[4:]},
    }
    (root / "card.yaml").write_text(yaml.safe_dump(card))
    return root / "card.yaml"


@pytest.mark.parametrize("method_name", METHODS.names())
def test_every_method_trains_and_predicts_with_four_modalities(method_name, four_modality_card):
    root, options = four_modality_card.parent, {"card": str(four_modality_card)}
    folder = DATASETS.get("folder")
    names = folder(root, "train", folder.make_options(options)).spec.modality_names
    for modalities in METHODS.get(method_name).training_subsets(names, []) or [names]:
        method, sampler, _ = build_method(
            method_name, root, dataset="folder", options=options, modalities=modalities
        )
        for step in range(4):  # both stages of the two-stage methods
            losses = method.update(sampler.batch(step), step)
            assert all(np.isfinite(v) for v in losses.values()), (step, losses)
        batch = sampler.batch(5)
        outputs = predictions(method, {m: batch[m] for m in modalities} | {"mask": batch["mask"]})
        assert len(outputs) == 2 ** len(modalities) - 1
        for scenario, logits in outputs.items():
            assert logits.shape[:2] == (batch["mask"].shape[0], 3), scenario
            assert torch.isfinite(logits).all(), scenario


@pytest.mark.parametrize("dataset_name", FOUR_MODALITY_NAMES)
@pytest.mark.parametrize("method_name", METHODS.names())
def test_every_method_covers_the_embedded_four_modality_scenarios(
    method_name, dataset_name, data_root
):
    method, sampler, spec = build_method(method_name, data_root, dataset=dataset_name, steps=4)
    for step in range(4):  # both stages of the two-stage methods
        losses = method.update(sampler.batch(step), step)
        assert all(np.isfinite(v) for v in losses.values()), (step, losses)
    outputs = predictions(method, sampler.batch(5))
    assert len(spec.modality_names) == 4 and len(outputs) == 15
    for scenario, logits in outputs.items():
        assert logits.shape[1] == spec.num_classes and torch.isfinite(logits).all(), scenario
