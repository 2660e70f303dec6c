"""bench/'s parsing and ratios (the runner itself needs a lab: `make bench`)."""
import ast
import json
import os
import sys

import pytest

from conftest import ROOT
from labkit import lab

# Appended: the root's labkit.py shim must not shadow scripts/labkit.
if ROOT not in sys.path:
    sys.path.append(ROOT)
from bench import parse, report  # noqa: E402


def task(name, start, end, hosts):
    return {"task": {"name": name, "duration": {"start": start, "end": end}},
            "hosts": {host: {"changed": changed} for host, changed in hosts.items()}}


DOCUMENT = {
    "plays": [
        {"play": {"name": "Base", "duration": {"start": "2026-01-01T00:00:00.000000Z",
                                                "end": "2026-01-01T00:00:30.000000Z"}},
         "tasks": [
             task("Gathering Facts", "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:02.500000Z",
                  {"web": False}),
             task("common : Install the base packages", "2026-01-01T00:00:02.500000Z",
                  "2026-01-01T00:00:22.500000Z", {"web": True, "worker-2": False}),
             task("community.general.thing : Do", "2026-01-01T00:00:22.500000Z",
                  "2026-01-01T00:00:23.000000Z", {"web": False}),
         ]},
        {"play": {"name": "Database", "duration": {"start": "2026-01-01T00:00:30.000000Z",
                                                    "end": "2026-01-01T00:01:01.000000Z"}},
         "tasks": [
             task("postgresql : Install PostgreSQL 15", "2026-01-01T00:00:30.000000Z",
                  "2026-01-01T00:01:00.000000Z", {"web": True}),
             task("common : Again", "2026-01-01T00:01:00.000000Z", "2026-01-01T00:01:01.000000Z",
                  {"web": False}),
         ]},
    ],
    "stats": {"web": {"ok": 5, "changed": 2, "failures": 0},
              "worker-2": {"ok": 1, "changed": 0, "failures": 0}},
}


def test_per_role_sums_task_durations_and_sorts_slowest_first():
    roles = parse.per_role(DOCUMENT)
    assert list(roles) == ["postgresql", "common", "(plays)", "thing"]
    assert roles["common"] == pytest.approx(21.0)
    assert roles["postgresql"] == pytest.approx(30.0)
    assert roles["(plays)"] == pytest.approx(2.5)
    assert roles["thing"] == pytest.approx(0.5)


def test_recap_and_changed_tasks():
    assert parse.recap(DOCUMENT) == {"ok": 6, "changed": 2, "failures": 0}
    assert parse.changed_tasks(DOCUMENT) == ["web: common : Install the base packages",
                                             "web: postgresql : Install PostgreSQL 15"]
    assert parse.per_play(DOCUMENT) == [("Base", 30.0), ("Database", 31.0)]


def test_load_json_output_skips_what_precedes_the_document_and_refuses_others():
    text = "[WARNING]: something\n" + json.dumps(DOCUMENT, indent=4) + "\n"
    assert parse.load_json_output(text)["stats"]["web"]["changed"] == 2
    twice = parse.load_json_output(json.dumps(DOCUMENT) + "\n" + json.dumps(DOCUMENT))
    assert len(twice["plays"]) == 4
    assert twice["stats"]["web"]["changed"] == 4
    with pytest.raises(ValueError):
        parse.load_json_output("PLAY RECAP\nweb : ok=1\n")
    with pytest.raises(ValueError):
        parse.load_json_output('{"not": "the callback"}')


def test_parse_recap_text():
    text = ("PLAY RECAP *****\n"
            "web                        : ok=12   changed=3    unreachable=0    failed=0    skipped=4\n"
            "worker-2                   : ok=7    changed=0    unreachable=0    failed=1    skipped=0\n"
            "\nFriday 27 November 2026  04:40:05 +0000 (0:00:00.170)\n")
    hosts = parse.parse_recap_text(text)
    assert hosts["web"]["changed"] == 3
    assert hosts["worker-2"] == {"ok": 7, "changed": 0, "unreachable": 0, "failed": 1, "skipped": 0}


def test_ratios_and_verdicts():
    assert parse.ratio(300.0, 150.0) == pytest.approx(2.0)
    assert parse.ratio(1.0, 0.0) is None
    assert parse.ratio(None, 3.0) is None
    assert parse.verdict(2.0, 2.0) == "met"
    assert parse.verdict(2.01, 2.0) == "NOT met"
    assert parse.verdict(None, 2.0) == "not measured"


def test_redownloaded_bytes_counts_new_and_replaced_files_only():
    before = {"/srv/cache_hub/a": (10, 100, "1.0"), "/srv/cache_hub/b": (11, 200, "2.0")}
    assert parse.redownloaded_bytes(before, dict(before)) == 0
    after = {"/srv/cache_hub/a": (10, 100, "1.0"), "/srv/cache_hub/b": (12, 200, "2.0"),
             "/srv/cache_hub/c": (13, 50, "3.0")}
    assert parse.redownloaded_bytes(before, after) == 250


def test_figures_take_ratios_within_one_run():
    results = {"cold": {"wall": 600.0}, "floor": {"wall": 200.0},
               "nochange": {"nochange": {"wall": 40.0, "changed": 0}},
               "scaling": {"1": {"wall": 100.0}, "8": {"wall": 180.0}},
               "readiness": {"max": 0.3}, "reprovision": {"redownloaded_bytes": 0}}
    figures = report.figures(results)
    assert figures["converge_over_floor"] == pytest.approx(3.0)
    assert figures["scale_8_over_1"] == pytest.approx(1.8)
    assert figures["scale_largest"] == 8
    assert figures["nochange_changed"] == 0


def floor_hosts():
    """bench/run.py's FLOOR_HOSTS, read without importing it (the import names the bench's lab)."""
    with open(os.path.join(ROOT, "bench", "run.py"), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    (node,) = [n for n in tree.body if isinstance(n, ast.Assign)
               and any(getattr(t, "id", None) == "FLOOR_HOSTS" for t in n.targets)]
    return ast.literal_eval(node.value)


def test_the_floor_runs_every_script_on_the_lab_hosts_image():
    """Each floor script is run (none lies unused, none is missing), on a host
    of the lab's name and Debian release, so the floor and the converge it is
    compared with install onto the same systems."""
    hosts = floor_hosts()
    assert {script for _, _, script in hosts} | {"common.sh"} == set(os.listdir(os.path.join(ROOT, "bench", "floor")))
    lab_images = {host.name: host.image for host in lab.HOSTS}
    for name, image, _ in hosts:
        assert lab_images.get(name) == image, f"floor host {name} runs {image}; the lab's runs {lab_images.get(name)}"


def test_task_seconds_finds_a_task_by_name():
    assert parse.task_seconds(DOCUMENT, "postgresql : Install PostgreSQL 15") == pytest.approx(30.0)
    assert parse.task_seconds(DOCUMENT, "no such task") is None



def test_per_role_scales_overlapping_tasks_down_to_the_play():
    """Under the free strategy two hosts' tasks overlap: 40 s of task times in a 25 s play."""
    document = {"plays": [{"play": {"name": "Free", "duration": {"start": "2026-01-01T00:00:00Z",
                                                                  "end": "2026-01-01T00:00:25Z"}},
                           "tasks": [task("common : A", "2026-01-01T00:00:00Z", "2026-01-01T00:00:20Z",
                                          {"web": False}),
                                     task("common : A", "2026-01-01T00:00:05Z", "2026-01-01T00:00:25Z",
                                          {"worker-2": False})]}],
                "stats": {}}
    assert parse.per_role(document) == {"common": pytest.approx(25.0)}
