"""site.yml as a whole against the lab: a second run changes nothing on any host.

Runs with or without a release archive: labkit records the arguments it ran
site.yml with (`--skip-tags concourse` when it had no archive), and this run
uses the same ones.
"""
import re
import subprocess

from conftest import ROOT


def test_a_second_site_run_changes_nothing(lab):
    result = subprocess.run(["ansible-playbook", "-i", "inventories/lab/hosts.yml", "site.yml",
                             *lab.playbook_args()], cwd=ROOT, env=lab.playbook_env(),
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-5000:]
    recap = result.stdout[result.stdout.rindex("PLAY RECAP"):]
    changed = dict(re.findall(r"^(\S+)\s*:.*\bchanged=(\d+)", recap, re.M))
    assert {"web", "gpu-worker-1", "worker-2"} <= set(changed), recap
    assert all(count == "0" for count in changed.values()), recap
