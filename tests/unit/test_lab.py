"""The lab's generated credentials and access file."""
import os
import stat

from labkit import lab


def test_secret_is_generated_once_and_never_rotated(tmp_path):
    first = lab.lab_secret(str(tmp_path), "concourse/admin-password")
    path = tmp_path / "concourse" / "admin-password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 32 and first.isalnum()
    assert lab.lab_secret(str(tmp_path), "concourse/admin-password") == first
    assert lab.lab_secret(str(tmp_path), "other") != first


def test_secret_file_is_ansible_password_lookup_format(tmp_path):
    # The password lookup stores "<value>" or "<value> salt=<salt>".
    path = tmp_path / "x"
    path.write_text("s3cret salt=abcd\n")
    assert lab.lab_secret(str(tmp_path), "x") == "s3cret"


def test_access_env_is_private_and_complete(tmp_path):
    values = lab.write_access(str(tmp_path))
    env = tmp_path / "access.env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    text = env.read_text()
    for key in ("CONCOURSE_URL", "CONCOURSE_USER", "CONCOURSE_PASSWORD",
                "PROXY_USER", "PROXY_PASSWORD"):
        assert f"{key}='{values[key]}'\n" in text
    assert values["CONCOURSE_URL"].startswith("https://localhost:")
    # A second run keeps the same credentials.
    assert lab.write_access(str(tmp_path)) == values


def test_lab_hosts_match_the_lab_inventory():
    import yaml
    from conftest import ROOT
    with open(os.path.join(ROOT, "inventories/lab/hosts.yml"), encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)

    def hosts(group):
        found = set((group.get("hosts") or {}).keys())
        for child in (group.get("children") or {}).values():
            found |= hosts(child)
        return found

    assert hosts(inventory["all"]) == {h.name for h in lab.HOSTS}
    assert set(lab.HOSTS[0].publish[0].split(":")[:1]) == {"127.0.0.1"}
