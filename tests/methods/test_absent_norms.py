"""Missing data never enters what it would distort (`--train-missing`, issue 30).

A training sample that lacks a modality must not pass through that modality's encoder or any
norm of its own: one step on a batch where no sample has the modality leaves every batch-norm
buffer that belongs to it (running mean/var, batches tracked) as it was. Only a method whose
test-time policy feeds the same fill through the same encoder may be exempt, and it must say
why (`Method.ENCODES_ABSENT`).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmark.core.method import AVAILABLE_PREFIX, encode_present, place_rows
from benchmark.core.plugins import METHODS
from tests.methods.zoo_helpers import build_method

ABSENT = "dsm"
STEPS = 4
"""`build_method`'s budget: its last update call is in every method's late stage (the student
of the two-stage methods, ShaSpec's and LCKD's random missing, MetaRS's alignment)."""


def last_call(name: str) -> int:
    """The index of a run's last `update` call (a method with a teacher makes more)."""
    return METHODS.get(name).update_calls(STEPS) - 1


def modality_norms(module: nn.Module, modality: str) -> dict[str, torch.Tensor]:
    """Copies of the buffers of every norm with running statistics that belongs to `modality`:
    one on a path with a part named after it (its stem, encoder, private trunk or composer
    norm, own decoder) or on a translator from it (`<modality>_to_<other>`)."""
    out = {}
    for name, child in module.named_modules():
        if getattr(child, "running_mean", None) is None:
            continue
        parts = name.split(".")
        if any(p == modality or p.startswith(f"{modality}_to_") for p in parts):
            out.update({f"{name}.{b}": v.detach().clone() for b, v in child.named_buffers()})
    return out


def absent_everywhere(batch: dict, modality: str, modalities: tuple[str, ...]) -> dict:
    """`batch` as `--train-missing` would give it if no sample had `modality` (NaN there)."""
    size = batch["mask"].shape[0]
    out = {**batch, modality: torch.full_like(batch[modality], float("nan"))}
    for m in modalities:
        out[AVAILABLE_PREFIX + m] = torch.full((size,), m != modality, dtype=torch.bool)
    return out


CASES = [
    *[(m, "synthetic", step, {}) for m in METHODS.names() for step in (0, last_call(m))],
    *[(m, "synthetic_3m", last_call(m), {}) for m in METHODS.names()],
    ("moddrop", "synthetic", last_call("moddrop"), {"fill": "feature_zero"}),
]


@pytest.mark.parametrize(
    ("name", "dataset", "step", "overrides"),
    CASES,
    ids=[
        f"{n}-{d}-step{s}{'-' if o else ''}{'-'.join(map(str, o.values()))}" for n, d, s, o in CASES
    ],
)
def test_a_step_without_a_modality_leaves_its_norms_untouched(
    name, dataset, step, overrides, data_root
):
    method, sampler, spec = build_method(name, data_root, overrides, dataset, steps=STEPS)
    reason = method.encodes_absent()
    if reason:
        pytest.skip(f"exempt: {reason}")
    before = modality_norms(method, ABSENT)
    assert before, f"{name} has no norm of its own for {ABSENT}: the test would prove nothing"
    batch = absent_everywhere(sampler.batch(step), ABSENT, spec.modality_names)
    method.update(batch, step)
    after = modality_norms(method, ABSENT)
    moved = [k for k, v in before.items() if not torch.equal(v, after[k])]
    assert not moved, f"{len(moved)} of {len(before)} {ABSENT} norm buffers moved: {moved[:6]}"


@pytest.mark.parametrize("name", METHODS.names())
def test_exempt_methods_say_why(name):
    """An exemption is a sentence on the method (its test-time fill), never a silent skip."""
    reason = METHODS.get(name).ENCODES_ABSENT
    assert isinstance(reason, str)
    if reason:
        assert len(reason.split()) >= 8, f"{name}: ENCODES_ABSENT says too little: {reason!r}"
        assert METHODS.get(name).TRAIN_MISSING


def test_an_exemption_is_needed_where_declared(data_root):
    """The zero-filling baseline does feed absent samples through its encoder: its exemption
    is real, and the contract test above would catch it without one."""
    method, sampler, spec = build_method("baseline", data_root, steps=STEPS)
    assert method.encodes_absent()
    before = modality_norms(method, ABSENT)
    method.update(absent_everywhere(sampler.batch(0), ABSENT, spec.modality_names), 0)
    after = modality_norms(method, ABSENT)
    assert any(not torch.equal(v, after[k]) for k, v in before.items())


def test_encode_present_runs_present_rows_only_and_places_them_back():
    torch.manual_seed(0)
    norms = nn.ModuleDict({"a": nn.BatchNorm2d(2), "b": nn.BatchNorm2d(2)})
    inputs = {"a": torch.randn(4, 2, 3, 3), "b": torch.randn(4, 2, 3, 3)}
    present = {"a": torch.tensor([True, False, True, False]), "b": torch.zeros(4, dtype=bool)}
    seen = {}

    def encode(rows):
        seen.update({m: x.shape[0] for m, x in rows.items()})
        return {m: [norms[m](x)] for m, x in rows.items()}

    out = encode_present(encode, inputs, present)
    assert seen == {"a": 2}  # b: no sample has it, so it is never encoded
    assert int(norms["b"].num_batches_tracked) == 0
    assert out["a"][0].shape == out["b"][0].shape == (4, 2, 3, 3)
    assert (out["a"][0][~present["a"]] == 0).all() and (out["b"][0] == 0).all()
    reference = nn.BatchNorm2d(2)
    torch.testing.assert_close(out["a"][0][present["a"]], reference(inputs["a"][present["a"]]))


def test_encode_present_with_every_row_present_is_the_plain_call():
    x = torch.randn(3, 2)
    out = encode_present(
        lambda rows: {m: v for m, v in rows.items()}, {"a": x}, {"a": torch.ones(3, dtype=bool)}
    )
    assert out["a"] is x
    assert place_rows(x, torch.ones(3, dtype=bool)) is x
