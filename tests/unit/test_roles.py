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


def named_roles():
    """Every role a playbook applies or a role/playbook includes."""
    names = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "roles" and isinstance(value, list):
                    names.update(r if isinstance(r, str) else r.get("role") or r.get("name") for r in value)
                elif key.endswith(("include_role", "import_role")) and isinstance(value, dict):
                    names.add(value["name"])
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    paths = glob.glob(os.path.join(ROOT, "playbooks", "*.yml")) + glob.glob(os.path.join(ROOT, "site.yml"))
    paths += glob.glob(os.path.join(ROOT, "roles", "*", "tasks", "*.yml"))
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            walk(yaml.safe_load(handle))
    return names


def test_every_role_a_playbook_names_exists_and_is_checked_here():
    """The parametrized tests below run over ROLES: if the glob found fewer
    roles than the playbooks use, they would pass over nothing."""
    named = named_roles()
    # playbooks/logging.yml names the store's role by kit_log_store; each
    # choice the inventory check allows must be a role.
    templated = {n for n in named if "{{" in n}
    assert templated <= {"{{ kit_log_store | default('loki') }}"}, templated
    named = (named - templated) | ({"loki", "victorialogs"} if templated else set())
    assert {"common", "postgresql", "nginx_proxy", "cache_hub"} <= named
    assert named <= set(ROLES), f"named but missing under roles/: {sorted(named - set(ROLES))}"


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
