import pytest

from benchmark.core.hparams import Params
from benchmark.core.options import NamedConfig, parse_named, parse_named_list
from benchmark.core.registry import Registry, UnknownNameError
from benchmark.system.errors import BenchmarkError


def test_registry_lists_valid_names_on_unknown():
    reg: Registry[int] = Registry("widget")
    reg.register("b")(1)
    reg.register("a", aliases=("alpha",))(2)
    assert reg.names() == ["b", "a"]  # registration order
    assert reg.get("alpha") == 2 and reg.canonical("alpha") == "a"
    with pytest.raises(UnknownNameError, match="unknown widget 'c'; valid names: b, a"):
        reg.get("c")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha")(3)


def test_parse_named_with_overrides():
    cfg = parse_named("stars[psa=false,lr=3e-4,backbone=resnet18]")
    assert cfg == NamedConfig("stars", Params({"backbone": "resnet18", "lr": 3e-4, "psa": False}))
    assert cfg.label() == "stars[backbone=resnet18,lr=0.0003,psa=false]"
    assert parse_named("baseline").overrides == Params()
    assert not parse_named("baseline").overrides


def test_list_valued_overrides_are_frozen_hashable_and_round_trip():
    """`stars[translate_levels=[2,3]]` (the README's ablation) once crashed: unhashable list."""
    cfg = parse_named("stars[translate_levels=[2,3]]")
    assert cfg.overrides["translate_levels"] == (2, 3)
    assert len({cfg, parse_named("stars[translate_levels=[2, 3]]")}) == 1
    assert cfg.label() == "stars[translate_levels=[2,3]]"
    assert parse_named(cfg.label()) == cfg


def test_parse_named_list_splits_on_top_level_commas():
    entries = parse_named_list("stars,stars[psa=false,lr=1e-3], baseline")
    assert [e.name for e in entries] == ["stars", "stars", "baseline"]
    assert dict(entries[1].overrides) == {"psa": False, "lr": 1e-3}


@pytest.mark.parametrize(
    "text", ["stars[psa]", "stars[psa=false", "stars]", "[x=1]", "stars[a=1,a=2]", "st ars", ""]
)
def test_malformed_entries_raise(text):
    with pytest.raises(BenchmarkError):
        parse_named_list(text)
