"""Check mode and --diff against the converged lab show nothing to change (issue: operations).

With or without a release archive: the run uses the arguments labkit ran
site.yml with (`--skip-tags concourse` without an archive).
"""
import re
import subprocess

from conftest import ROOT


def test_check_mode_with_diff_shows_nothing_to_change(lab):
    result = subprocess.run(["ansible-playbook", "-i", "inventories/lab/hosts.yml", "site.yml", "--check", "--diff",
                             *lab.playbook_args()], cwd=ROOT, env=lab.playbook_env(),
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-5000:]
    recap = result.stdout[result.stdout.rindex("PLAY RECAP"):]
    changed = dict(re.findall(r"^(\S+)\s*:.*\bchanged=(\d+)", recap, re.M))
    assert {"web", "gpu-worker-1", "worker-2"} <= set(changed), recap
    assert all(count == "0" for count in changed.values()), recap
    # --diff prints a diff only for something that would change.
    assert not re.search(r"^--- before", result.stdout, re.M), result.stdout[-5000:]
