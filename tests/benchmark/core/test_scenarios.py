import pytest

from benchmark.core.scenarios import Scenario, all_scenarios, scenarios_for_missing
from benchmark.system.errors import BenchmarkError


def test_two_modalities_give_three_scenarios_full_first():
    got = [str(s) for s in all_scenarios(["optical", "dsm"])]
    assert got == ["dsm+optical", "dsm", "optical"]


def test_three_modalities_give_seven_scenarios():
    got = [str(s) for s in all_scenarios(["sar", "optical", "dsm"])]
    assert got == [
        "dsm+optical+sar",
        "dsm+optical",
        "dsm+sar",
        "optical+sar",
        "dsm",
        "optical",
        "sar",
    ]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_every_nonempty_subset_once(n):
    names = [f"m{i}" for i in range(n)]
    scenarios = all_scenarios(names)
    assert len(scenarios) == 2**n - 1
    assert len({s.present for s in scenarios}) == len(scenarios)


def test_missing_flag_maps_to_scenarios():
    names = ["optical", "dsm", "sar"]
    assert [str(s) for s in scenarios_for_missing("dsm", names)] == [
        "dsm+optical+sar",
        "optical+sar",
    ]
    assert [str(s) for s in scenarios_for_missing("dsm,sar", names)] == [
        "dsm+optical+sar",
        "optical+sar",
        "dsm+optical",
    ]
    assert [str(s) for s in scenarios_for_missing("dsm+sar", names)] == [
        "dsm+optical+sar",
        "optical",
    ]
    assert [str(s) for s in scenarios_for_missing("none", names)] == ["dsm+optical+sar"]
    assert len(scenarios_for_missing("all", names)) == 7


@pytest.mark.parametrize(
    "flag,message", [("lidar", "unknown modality lidar"), ("dsm+optical", "leaves no modality")]
)
def test_bad_missing_flag(flag, message):
    with pytest.raises(BenchmarkError, match=message):
        scenarios_for_missing(flag, ["optical", "dsm"])


def test_select_drops_absent_keys_and_labels():
    scenario = Scenario(frozenset({"optical"}))
    assert scenario.select({"optical": 1, "dsm": 2, "mask": 3}) == {"optical": 1}
    assert scenario.missing_label(["dsm", "optical"]) == "dsm"
    assert Scenario.parse("optical+dsm") == Scenario(frozenset({"dsm", "optical"}))
