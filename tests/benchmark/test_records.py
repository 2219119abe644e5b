from dataclasses import replace

from benchmark.records import RunSpec

SPEC = RunSpec(
    method="baseline",
    hparams=(("lr", 1e-3),),
    dataset="synthetic",
    dataset_options=(("seed", 0),),
    seed=0,
    steps=10,
    val_checks=2,
    eval_overlap=0.5,
    eval_batch_size=16,
    train_modalities=("dsm", "optical"),
    label="baseline",
    preset="quick",
)


def test_run_id_is_stable_and_content_addressed():
    assert SPEC.run_id == replace(SPEC).run_id
    assert len(SPEC.run_id) == 16
    assert replace(SPEC, label="other", preset="x", eval_batch_size=4).run_id == SPEC.run_id
    for change in (
        {"seed": 1},
        {"steps": 11},
        {"hparams": (("lr", 2e-3),)},
        {"dataset_options": (("seed", 1),)},
    ):
        assert replace(SPEC, **change).run_id != SPEC.run_id


def test_json_round_trip():
    assert RunSpec.from_json(SPEC.to_json()) == SPEC
    assert RunSpec.from_json(SPEC.to_json()).run_id == SPEC.run_id


def test_run_id_is_pinned():
    """A changed hash orphans every finished run: change it only with HARNESS_VERSION."""
    assert SPEC.run_id == "f4e435fe3c0235a8"
