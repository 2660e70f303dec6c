"""Check mode and --diff against the converged lab show nothing to change (issue: operations).

With or without a release archive: the run uses the arguments labkit ran
site.yml with (`--skip-tags concourse` without an archive).
"""
import re

from conftest import changed_per_host


def test_check_mode_with_diff_shows_nothing_to_change(lab):
    result = lab.site("--check", "--diff")
    changed = changed_per_host(result.stdout)
    assert {"web", "gpu-worker-1", "worker-2"} <= set(changed), changed
    assert set(changed.values()) == {0}, result.stdout[-5000:]
    # --diff prints a diff only for something that would change.
    assert not re.search(r"^--- before", result.stdout, re.M), result.stdout[-5000:]
