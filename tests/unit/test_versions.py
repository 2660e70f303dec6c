"""One version, one place: the NVIDIA Container Toolkit's version is written
in roles/nvidia_container_toolkit/defaults/main.yml only; labkit and the
molecule scenario derive it. This test fails when a copy appears or a
derivation drifts."""
import os
import re
import subprocess
import sys

import yaml

from conftest import ROOT
from labkit import artifacts

DEFAULTS = os.path.join(ROOT, "roles/nvidia_container_toolkit/defaults/main.yml")


def role_version():
    with open(DEFAULTS, encoding="utf-8") as handle:
        return yaml.safe_load(handle)["nvidia_container_toolkit_version"]


def tracked_files():
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [p for p in out.splitlines() if not p.endswith((".md",)) and os.path.isfile(os.path.join(ROOT, p))]


def test_labkit_builds_the_roles_version():
    package = role_version()
    upstream = package.rsplit("-", 1)[0]
    assert re.fullmatch(r"\d+\.\d+\.\d+", upstream), package
    toolkit = artifacts.COMPONENTS["nvidia-container-toolkit"]
    assert toolkit.version == upstream
    assert toolkit.module_version == f"v{upstream}"
    assert any(flag.endswith(f"info.version={upstream}") for flag in toolkit.ldflags)


def test_the_version_is_written_once():
    """No file but the role's defaults (and its argument spec, which
    test_roles.py keeps equal to them) writes the toolkit's version."""
    upstream = role_version().rsplit("-", 1)[0]
    allowed = {"roles/nvidia_container_toolkit/defaults/main.yml",
               "roles/nvidia_container_toolkit/meta/argument_specs.yml"}
    pattern = re.compile(r"(?<![0-9.])" + re.escape(upstream) + r"(?![0-9])")
    copies = []
    for path in tracked_files():
        if path in allowed or path.startswith("tests/"):
            continue
        with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as handle:
            if pattern.search(handle.read()):
                copies.append(path)
    assert not copies, f"the toolkit version {upstream} is written again in {copies}: derive it"


def test_molecule_derives_the_asset_from_the_role(tmp_path):
    """molecule/nvidia_container_toolkit/prepare.yml's _asset, rendered by Ansible."""
    # prepare.yml reads the role through playbook_dir/../../roles: render it
    # from the same depth in a temporary tree whose roles/ is the kit's.
    (tmp_path / "molecule" / "nvidia_container_toolkit").mkdir(parents=True)
    (tmp_path / "roles").symlink_to(os.path.join(ROOT, "roles"))
    target = tmp_path / "molecule" / "nvidia_container_toolkit" / "render.yml"
    with open(os.path.join(ROOT, "molecule/nvidia_container_toolkit/prepare.yml"), encoding="utf-8") as handle:
        prepare = yaml.safe_load(handle)[0]
    target.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False, "vars": dict(prepare["vars"], test_toolkit_artifact_cache="/c"),
        "tasks": [{"ansible.builtin.debug": {"msg": "{{ _asset }} {{ test_toolkit_source_build }}"}}],
    }]))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                           "-i", "localhost,", "-c", "local", "-e", "_arch=amd64", str(target)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    component = artifacts.COMPONENTS["nvidia-container-toolkit"]
    assert f"{component.asset_name('amd64')} /c/nvidia-container-toolkit/{component.version}/linux-amd64" in proc.stdout
