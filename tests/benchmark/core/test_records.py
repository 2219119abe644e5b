import json
from dataclasses import replace

from benchmark.core.hparams import Params
from benchmark.core.records import RunSpec
from tests.benchmark.core.sample_spec import SPEC


def test_run_id_is_stable_and_content_addressed():
    # Rebuilt from its JSON (as a worker does) and with its mappings given in another order:
    # the same content, the same id.
    rebuilt = RunSpec.from_json(json.loads(json.dumps(SPEC.to_json())))
    assert rebuilt.run_id == SPEC.run_id
    two = replace(SPEC, hparams=Params({"lr": 1e-3, "batch_size": 8}))
    assert two.run_id == replace(SPEC, hparams=Params({"batch_size": 8, "lr": 1e-3})).run_id
    assert len(SPEC.run_id) == 16
    assert replace(SPEC, label="other", preset="x", eval_batch_size=4).run_id == SPEC.run_id
    for change in (
        {"seed": 1},
        {"steps": 11},
        {"hparams": Params({"lr": 2e-3})},
        {"dataset_options": Params({"seed": 1})},
    ):
        assert replace(SPEC, **change).run_id != SPEC.run_id


def test_list_valued_hyperparameters_hash_and_round_trip():
    spec = replace(SPEC, hparams=Params({"translate_levels": [2, 3]}))
    assert spec.hparams["translate_levels"] == (2, 3)
    assert hash(spec) == hash(replace(SPEC, hparams=Params({"translate_levels": (2, 3)})))
    assert RunSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


def test_json_round_trip():
    assert RunSpec.from_json(SPEC.to_json()) == SPEC
    assert RunSpec.from_json(SPEC.to_json()).run_id == SPEC.run_id


def test_run_id_is_pinned():
    """A changed hash orphans every finished run: change it only with HARNESS_VERSION."""
    assert SPEC.run_id == "c217bffa479f1213"


def test_evaluation_window_and_tiles_hash_only_when_set():
    """Runs evaluated as before (the crop as window, every tile) keep their ids; a run
    evaluated in other windows or on fewer tiles is another run."""
    assert replace(SPEC, eval_window=0, eval_tiles=0).run_id == SPEC.run_id
    assert replace(SPEC, eval_window=512).run_id != SPEC.run_id
    assert replace(SPEC, eval_tiles=2).run_id != SPEC.run_id
    spec = replace(SPEC, hparams=Params({"crop_size": 128}))
    assert spec.window == 128 and replace(spec, eval_window=512).window == 512
    assert RunSpec.from_json(replace(SPEC, eval_window=512, eval_tiles=2).to_json()).window == 512
