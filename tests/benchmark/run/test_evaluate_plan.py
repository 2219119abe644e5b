"""One pass over the tiles for every severity of a corruption and every scenario gives what one
evaluation per (corruption, severity) gives, while the modalities a corruption leaves alone
are encoded once for all severities."""

from __future__ import annotations

import pytest
import torch

from benchmark.core.plugins import DATASETS
from benchmark.core.scenarios import all_scenarios
from benchmark.corrupt.tile import TileCorruption
from benchmark.run.evaluate import evaluate_plan
from methods.components.encoders import ModalityEncoder
from tests.conftest import TINY
from tests.methods.zoo_helpers import build_method

WINDOWS = {"window": 64, "overlap": 0.5, "batch_size": 4, "device": torch.device("cpu")}


@pytest.fixture(scope="module")
def trained(data_root):
    method, sampler, _ = build_method("baseline", data_root)
    for step in range(2):
        method.update(sampler.batch(step), step)
    test = DATASETS.get("synthetic")(
        data_root, "test", DATASETS.get("synthetic").make_options(TINY)
    )
    return method, test


@pytest.mark.parametrize("name", ["clouds", "haze", "dsm_voids"])
def test_one_pass_over_severities_equals_one_evaluation_each(trained, name):
    method, test = trained
    scenarios = all_scenarios(test.spec.modality_names)
    plan = [(TileCorruption(name, severity), scenarios) for severity in (1, 3, 5)]
    together = evaluate_plan(method, test, plan, **WINDOWS)
    for (corruption, _), matrices in zip(plan, together, strict=True):
        (alone,) = evaluate_plan(method, test, [(corruption, scenarios)], **WINDOWS)
        for scenario in scenarios:
            got = [m.matrix for m in matrices[scenario]]
            want = [m.matrix for m in alone[scenario]]
            assert all(
                torch.equal(torch.as_tensor(a), torch.as_tensor(b))
                for a, b in zip(got, want, strict=True)
            ), (
                corruption,
                scenario,
            )


def test_untouched_modalities_are_encoded_once_for_every_severity(trained, monkeypatch):
    """Haze touches the optical image only: the DSM of every window is encoded once for all
    severities and scenarios; each severity's optical image once."""
    method, test = trained
    seen: list[int] = []
    pyramid = ModalityEncoder._pyramid

    def counted(self, x):
        seen.append(x.shape[0])
        return pyramid(self, x)

    monkeypatch.setattr(ModalityEncoder, "_pyramid", counted)
    scenarios = all_scenarios(test.spec.modality_names)
    plan = [(TileCorruption("haze", severity), scenarios) for severity in (1, 3, 5)]
    evaluate_plan(method, test, plan, **WINDOWS)
    shared = sum(seen)
    seen.clear()
    for entry in plan:
        for scenario in scenarios:
            evaluate_plan(method, test, [(entry[0], [scenario])], **WINDOWS)
    # per window: dsm + 3 optical severities + the two zero fills, against 6 per severity
    assert 3 * shared <= sum(seen), (shared, sum(seen))
