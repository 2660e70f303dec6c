"""Every role keeps meta/argument_specs.yml and defaults/main.yml in step."""
import glob
import os

import pytest
import yaml

from conftest import ROOT

ROLES = sorted(os.path.basename(os.path.dirname(p))
               for p in glob.glob(os.path.join(ROOT, "roles", "*", "tasks")))


def load(role, relpath):
    path = os.path.join(ROOT, "roles", role, relpath)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def test_there_are_roles():
    assert "common" in ROLES


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_match_defaults(role):
    specs = load(role, "meta/argument_specs.yml")
    assert specs is not None, f"{role} has no meta/argument_specs.yml"
    options = specs["argument_specs"]["main"]["options"]
    defaults = load(role, "defaults/main.yml") or {}
    assert set(defaults) == {k for k, v in options.items() if "default" in v or not v.get("required")}, \
        f"{role}: defaults/main.yml and meta/argument_specs.yml name different variables"
    for name, value in defaults.items():
        assert options[name].get("default") == value, f"{role}: {name} default differs from its spec"


@pytest.mark.parametrize("role", ROLES)
def test_variables_are_prefixed_with_the_role(role):
    specs = load(role, "meta/argument_specs.yml")
    for name in specs["argument_specs"]["main"]["options"]:
        assert name.startswith(f"{role}_"), f"{role}: {name} lacks the role prefix"
    for name in load(role, "vars/main.yml") or {}:
        assert name.startswith(f"_{role}_"), f"{role}: private var {name} must start with _{role}_"


@pytest.mark.parametrize("role", ROLES)
def test_templates_carry_ansible_managed(role):
    for path in glob.glob(os.path.join(ROOT, "roles", role, "templates", "*.j2")):
        with open(path, encoding="utf-8") as handle:
            assert "ansible_managed" in handle.read(), path
