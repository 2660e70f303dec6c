"""The molecule scenarios' wiring, which molecule itself does not check."""
import glob
import os

import yaml

from conftest import ROOT

SCENARIOS = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(ROOT, "molecule/*/molecule.yml")))


def load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def test_scenarios_are_found():
    names = {os.path.basename(s) for s in SCENARIOS}
    assert {"default", "nginx_proxy", "postgresql", "cache_hub"} <= names


def test_a_scenarios_own_prepare_is_the_one_that_runs():
    """The shared config points prepare at molecule/shared/prepare.yml: a
    scenario with a prepare.yml of its own must name it, or its fixtures
    would silently not be installed."""
    shared = load(os.path.join(ROOT, ".config/molecule/config.yml"))["provisioner"]["playbooks"]["prepare"]
    assert os.path.isfile(os.path.normpath(os.path.join(ROOT, "molecule", "x", shared)))
    for scenario in SCENARIOS:
        named = (load(os.path.join(scenario, "molecule.yml")).get("provisioner") or {}).get("playbooks", {})
        if os.path.exists(os.path.join(scenario, "prepare.yml")):
            assert named.get("prepare") == "prepare.yml", f"{scenario}: name prepare.yml in molecule.yml"
        else:
            assert "prepare" not in named, scenario


def test_scenario_names_are_their_directories():
    for scenario in SCENARIOS:
        assert load(os.path.join(scenario, "molecule.yml"))["scenario"]["name"] == os.path.basename(scenario)
