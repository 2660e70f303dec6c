"""Central logs: no AGPL module anywhere, and one version per component.

This project uses no AGPL code (README, "Licence"). Loki is AGPL, and
Grafana Alloy links Loki's packages; neither may appear in any Go module of
ours.
"""
import glob
import os
import re

import yaml

from conftest import ROOT
from labkit import artifacts

AGPL_MODULES = ("github.com/grafana/loki", "github.com/grafana/alloy")
KIT_DIR = os.path.join(ROOT, "scripts", "otelcol-kit")


def our_go_files(root, name):
    return [p for p in glob.glob(os.path.join(root, "**", name), recursive=True)
            if "/.venv/" not in p and "/.git/" not in p]


def agpl_modules_named(root):
    """[(path, module)] for every go.mod or go.sum under root that names an AGPL module."""
    found = []
    for path in our_go_files(root, "go.sum") + our_go_files(root, "go.mod"):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        found += [(path, module) for module in AGPL_MODULES if module in text]
    return found


def test_no_go_module_of_ours_names_an_agpl_module():
    assert os.path.join(KIT_DIR, "go.sum") in our_go_files(ROOT, "go.sum"), "the collector's go.sum is committed"
    assert agpl_modules_named(ROOT) == []


def test_the_agpl_check_catches_a_module_that_pulls_loki(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "go.sum").write_text("github.com/grafana/loki/v3 v3.7.8 h1:abc=\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "go.mod").write_text("module x\n\nrequire (\n\tgithub.com/grafana/alloy v1.9.0\n)\n")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "go.mod").write_text("module y\n\nrequire golang.org/x/sys v0.30.0\n")
    assert sorted(agpl_modules_named(str(tmp_path))) == [
        (str(tmp_path / "a" / "go.sum"), "github.com/grafana/loki"),
        (str(tmp_path / "b" / "go.mod"), "github.com/grafana/alloy")]


def load(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def test_collector_module_matches_its_manifest():
    manifest = load("scripts/otelcol-kit/manifest.yaml")
    with open(os.path.join(KIT_DIR, "go.mod"), encoding="utf-8") as handle:
        gomod = handle.read()
    assert re.search(r"^module " + re.escape(manifest["dist"]["module"]) + "$", gomod, re.M)
    for kind in ("receivers", "processors", "exporters", "extensions"):
        for entry in manifest[kind]:
            module, version = entry["gomod"].split()
            assert re.search(rf"^\s+{re.escape(module)} {re.escape(version)}$", gomod, re.M), \
                f"{module} {version} of the manifest is not what go.mod requires: regenerate"
    # No component that the official otelcol-contrib lacks, nor any that pulls
    # OTTL's profile contexts, which the module proxy refuses.
    assert all("attributesprocessor" not in e["gomod"] for e in manifest["processors"])


def test_versions_are_in_step():
    kit = artifacts.COMPONENTS["otelcol-kit"]
    assert load("scripts/otelcol-kit/manifest.yaml")["dist"]["version"] == kit.version
    lab = load("inventories/lab/group_vars/all/logs.yml")
    assert lab["otel_collector_distribution"] == "kit"
    assert lab["otel_collector_version"] == kit.version
    assert lab["victorialogs_version"] == artifacts.COMPONENTS["victorialogs"].version


def test_collector_config_uses_only_built_components():
    """Every component type the role configures is in the kit's build."""
    with open(os.path.join(ROOT, "roles", "otel_collector", "templates", "config.yaml.j2"),
              encoding="utf-8") as handle:
        template = handle.read()
    manifest = load("scripts/otelcol-kit/manifest.yaml")
    built = " ".join(e["gomod"] for kind in ("receivers", "processors", "exporters", "extensions")
                     for e in manifest[kind])
    for kind, module in (("journald", "journaldreceiver"), ("file_log", "filelogreceiver"),
                         ("memory_limiter", "memorylimiterprocessor"),
                         ("resource", "resourceprocessor"), ("batch", "batchprocessor"),
                         ("otlp_http", "otlphttpexporter"), ("file_storage", "filestorage")):
        assert re.search(rf"^\s+{kind}[:/]", template, re.M), kind
        assert module in built, module
