"""The base images' recipe and the container settings shared with molecule."""
import glob
import os

import yaml

from labkit import images, lab

from conftest import ROOT


def molecule_platforms():
    """The shared platforms and those of every scenario that sets its own."""
    paths = [os.path.join(ROOT, ".config/molecule/config.yml")]
    paths += sorted(glob.glob(os.path.join(ROOT, "molecule/*/molecule.yml")))
    platforms = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            platforms += (yaml.safe_load(handle) or {}).get("platforms", [])
    return platforms


def worker_settings():
    """SYSTEMD_CONTAINER plus the lab's Concourse worker settings (lab.WORKER_DOCKER_ARGS)."""
    extra = dict(zip(lab.WORKER_DOCKER_ARGS[::2], lab.WORKER_DOCKER_ARGS[1::2]))
    assert set(extra) == {"--cap-add", "--security-opt", "--device"}
    settings = dict(images.SYSTEMD_CONTAINER)
    settings["capabilities"] = settings["capabilities"] + [extra["--cap-add"]]
    settings["security_opts"] = settings["security_opts"] + [extra["--security-opt"]]
    settings["devices"] = [extra["--device"]]
    return settings


def test_molecule_uses_the_labs_container_settings():
    platforms = molecule_platforms()
    assert {p["image"] for p in platforms} <= {r.name for r in images.IMAGES.values()}
    for platform in platforms:
        # Concourse worker scenarios run their workers as the lab runs its workers.
        worker = "concourse_workers" in platform.get("groups", [])
        settings = worker_settings() if worker else images.SYSTEMD_CONTAINER
        assert platform["pre_build_image"] is True
        assert platform["command"].split() == settings["command"]
        for key in ("capabilities", "security_opts", "cgroupns_mode", "volumes", "stop_signal"):
            expected = settings[key]
            if worker and key == "security_opts":
                # Docker's API refuses systempaths=unconfined (the docker CLI
                # turns it into empty masked paths, which molecule's driver
                # cannot set); molecule/concourse_worker/molecule.yml says so.
                expected = [opt for opt in expected if opt != "systempaths=unconfined"]
            assert platform[key] == expected, (platform["name"], key)
        tmpfs = platform["tmpfs"]
        if worker:
            # The work directory: baggageclaim cannot use the container's overlay root.
            assert tmpfs[-1].startswith(lab.WORKER_WORK_DIR[1] + ":")
            tmpfs = tmpfs[:-1]
            assert platform["devices"] == settings["devices"]
        assert tmpfs == settings["tmpfs"], (platform["name"], "tmpfs")
        assert not platform.get("privileged", False)


def test_docker_run_args_carry_every_setting():
    args = images.docker_run_args()
    assert "--privileged" not in args
    assert args[args.index("--cgroupns") + 1] == "host"
    assert args[args.index("--stop-signal") + 1] == "SIGRTMIN+3"
    assert [args[i + 1] for i, a in enumerate(args) if a == "--cap-add"] == ["SYS_ADMIN", "NET_ADMIN"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--tmpfs"] == ["/run", "/run/lock", "/tmp"]


def test_recipe_digest_follows_its_inputs():
    base = images.Recipe(name="x:1", suite="bookworm")
    same = images.Recipe(name="x:1", suite="bookworm")
    assert base.digest("http://m") == same.digest("http://m")
    assert base.digest("http://m") != base.digest("http://other")
    assert base.digest("http://m") != images.Recipe(name="x:1", suite="trixie").digest("http://m")
    more = images.Recipe(name="x:1", suite="bookworm", packages=images.BASE_PACKAGES + ("vim",))
    assert base.digest("http://m") != more.digest("http://m")


def test_both_supported_debian_releases_have_an_image():
    assert {r.suite for r in images.IMAGES.values()} == {"bookworm", "trixie"}
    for recipe in images.IMAGES.values():
        assert "systemd-sysv" in recipe.packages and "python3" in recipe.packages


def test_mask_units_links_to_dev_null(tmp_path):
    images._mask_units(str(tmp_path), ("getty.target", "a.service"))
    images._mask_units(str(tmp_path), ("getty.target",))  # a second pass is fine
    link = tmp_path / "etc/systemd/system/getty.target"
    assert os.readlink(link) == "/dev/null"
