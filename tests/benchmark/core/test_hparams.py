import pytest

from benchmark.core.hparams import HParam, resolve_hparams
from benchmark.system.errors import BenchmarkError

SPACE = {
    "lr": HParam(1e-3, low=1e-6, high=1.0),
    "steps": HParam(10, low=1),
    "flag": HParam(True),
    "mode": HParam("a", choices=("a", "b")),
}


def test_defaults_then_layers_in_order():
    values = resolve_hparams(SPACE, {"lr": 0.1}, {"lr": 3e-4, "mode": "b"})
    assert values == {"lr": 3e-4, "steps": 10, "flag": True, "mode": "b"}
    assert isinstance(resolve_hparams(SPACE, {"lr": 1})["lr"], float)


@pytest.mark.parametrize(
    "override,message",
    [
        ({"lrr": 1.0}, "unknown hyperparameter lrr .*valid: flag, lr, mode, steps"),
        ({"steps": 1.5}, "expected an integer"),
        ({"flag": 1}, "expected true or false"),
        ({"mode": "c"}, "expected one of a, b"),
        ({"lr": 5.0}, "must be <= 1.0"),
        ({"steps": 0}, "must be >= 1"),
    ],
)
def test_bad_overrides_raise(override, message):
    with pytest.raises(BenchmarkError, match=message):
        resolve_hparams(SPACE, override)
