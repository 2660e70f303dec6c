"""site.yml as a whole against the lab: a second run changes nothing on any host.

Runs with or without a release archive: labkit records the arguments it ran
site.yml with (`--skip-tags concourse` when it had no archive), and this run
uses the same ones.
"""
from conftest import changed_per_host


def test_a_second_site_run_changes_nothing(lab):
    changed = changed_per_host(lab.site().stdout)
    assert {"web", "gpu-worker-1", "worker-2"} <= set(changed), changed
    assert set(changed.values()) == {0}, changed
