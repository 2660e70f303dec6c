"""The shipped inventories parse, and the inventory check catches bad ones."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import ROOT

ENV = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
           ANSIBLE_NOCOLOR="1")


def inventory(path):
    out = subprocess.run(["ansible-inventory", "-i", path, "--list"], cwd=ROOT, env=ENV,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def hosts_of(inv, group):
    found = set(inv.get(group, {}).get("hosts", []))
    for child in inv.get(group, {}).get("children", []):
        found |= hosts_of(inv, child)
    return found


@pytest.mark.parametrize("name", ["lab", "example"])
def test_inventory_groups(name):
    inv = inventory(f"inventories/{name}/hosts.yml")
    for group in ("concourse_web", "postgresql", "concourse_workers", "log_store"):
        assert hosts_of(inv, group), f"{name}: {group} is empty"
    assert "gpu_workers" in inv["concourse_workers"]["children"]
    assert hosts_of(inv, "gpu_workers") <= hosts_of(inv, "concourse_workers")


def run_check(path):
    return subprocess.run(["ansible-playbook", "-i", path, "playbooks/inventory-check.yml"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True)


@pytest.mark.parametrize("name", ["lab", "example"])
def test_inventory_check_passes(name):
    result = run_check(f"inventories/{name}/hosts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_inventory_check_names_what_is_wrong(tmp_path):
    (tmp_path / "hosts.yml").write_text(
        "all:\n  vars:\n    kit_secrets_dir: /tmp/x\n  children:\n"
        "    concourse_web: {hosts: {w: }}\n    postgresql: {hosts: {w: }}\n"
        "    log_store: {hosts: {w: }}\n    concourse_workers: {hosts: {c: }}\n"
        "    gpu_workers: {hosts: {g: }}\n")
    result = run_check(str(tmp_path / "hosts.yml"))
    assert result.returncode != 0
    assert "are in gpu_workers but not in concourse_workers" in result.stdout


def test_inventory_check_names_a_missing_group(tmp_path):
    (tmp_path / "hosts.yml").write_text(
        "all:\n  vars:\n    kit_secrets_dir: /tmp/x\n  children:\n"
        "    concourse_web: {hosts: {w: }}\n    concourse_workers: {hosts: {c: }}\n")
    result = run_check(str(tmp_path / "hosts.yml"))
    assert result.returncode != 0
    assert "inventory group 'postgresql' is missing or empty" in result.stdout


def test_inventory_check_refuses_an_unknown_log_store(tmp_path):
    (tmp_path / "hosts.yml").write_text(
        "all:\n  vars:\n    kit_secrets_dir: /tmp/x\n    kit_log_store: elasticsearch\n  children:\n"
        "    concourse_web: {hosts: {w: }}\n    postgresql: {hosts: {w: }}\n"
        "    log_store: {hosts: {w: }}\n"
        "    concourse_workers: {hosts: {c: }, children: {gpu_workers: {hosts: {g: }}}}\n")
    result = run_check(str(tmp_path / "hosts.yml"))
    assert result.returncode != 0
    assert "it must be loki or victorialogs" in result.stdout


def test_a_copy_made_as_the_readme_says_works(tmp_path):
    """README "Pointing the kit at real servers", step by step: copy the example,
    make and encrypt the Vault file, drop in the certificate, then --syntax-check
    site.yml and run the inventory check against the copy (no host is contacted)."""
    prod = tmp_path / "prod"
    subprocess.run(["cp", "-r", os.path.join(ROOT, "inventories", "example"), str(prod)], check=True)
    vault = prod / "group_vars" / "all" / "vault.yml"
    subprocess.run(["cp", str(vault) + ".example", str(vault)], check=True)
    password = tmp_path / "vault-pass"
    password.write_text("a-test-vault-password\n")
    password.chmod(0o600)
    subprocess.run(["ansible-vault", "encrypt", "--vault-password-file", str(password), str(vault)],
                   cwd=ROOT, env=ENV, check=True, capture_output=True)
    assert vault.read_text().startswith("$ANSIBLE_VAULT;"), "the Vault file is not encrypted"
    (prod / "files" / "ci.example.internal.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    for playbook, extra in (("site.yml", ["--syntax-check"]), ("playbooks/inventory-check.yml", [])):
        result = subprocess.run(["ansible-playbook", "-i", str(prod), "--vault-password-file", str(password),
                                 *extra, playbook], cwd=ROOT, env=ENV, capture_output=True, text=True)
        assert result.returncode == 0, f"{playbook}:\n{result.stdout}\n{result.stderr}"
        assert "WARNING" not in result.stderr.replace("[WARNING]: Skipping callback", ""), result.stderr


DELEGATED = """
- hosts: {source}
  gather_facts: false
  tasks:
    - ansible.builtin.debug:
        msg: "container={{{{ ansible_delegated_vars['{target}']['ansible_host'] }}}}"
      delegate_to: {target}
"""


@pytest.mark.parametrize("source,target", [("gpu-worker-1", "web"), ("web", "worker-2")])
def test_a_task_delegated_in_the_lab_reaches_the_target_hosts_container(tmp_path, source, target):
    """Delegation templates the target's connection variables with the source's inventory_hostname.

    The operations playbooks delegate to the web node (its API, its facts);
    a container name built from inventory_hostname once sent those tasks
    into the worker. Connection is forced local here: only the name is read.
    """
    playbook = tmp_path / "delegated.yml"
    playbook.write_text(DELEGATED.format(source=source, target=target))
    env = dict(ENV, LABKIT_LAB="unit-lab")
    out = subprocess.run(["ansible-playbook", "-i", "inventories/lab/hosts.yml", "-e", "ansible_connection=local",
                          str(playbook)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"container=unit-lab-{target}" in out.stdout, out.stdout


def test_the_kits_lint_passes_an_operators_inventory_with_a_vault_file(tmp_path):
    """`make lint` in a clone holding inventories/prod made as the README says,
    its Vault file encrypted: the kit's lint configuration, on that inventory."""
    kit = tmp_path / "kit"
    (kit / "inventories").mkdir(parents=True)
    for name in (".yamllint", ".ansible-lint"):
        shutil.copy(os.path.join(ROOT, name), kit / name)
    prod = kit / "inventories" / "prod"
    shutil.copytree(os.path.join(ROOT, "inventories", "example"), prod)
    vault = prod / "group_vars" / "all" / "vault.yml"
    shutil.copy(str(vault) + ".example", vault)
    password = tmp_path / "vault-pass"
    password.write_text("a-test-vault-password\n")
    subprocess.run(["ansible-vault", "encrypt", "--vault-password-file", str(password), str(vault)],
                   cwd=kit, env=ENV, check=True, capture_output=True)
    for argv in (["yamllint", "--strict", "."], ["ansible-lint", "--profile", "production", "--strict"]):
        result = subprocess.run(argv, cwd=kit, env=ENV, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{argv[0]}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
