"""The entry points a newcomer types: `make help` and `python -m labkit`."""
import os
import re
import subprocess
import sys

from conftest import ROOT


def makefile_targets():
    with open(os.path.join(ROOT, "Makefile"), encoding="utf-8") as handle:
        text = handle.read()
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", text, re.M))
    phony = set(re.search(r"^\.PHONY:(.*)$", text, re.M).group(1).split())
    return targets, phony


def test_make_help_lists_every_target():
    targets, phony = makefile_targets()
    assert {"lab", "test", "lint", "unit", "molecule"} <= targets
    assert targets == phony, "every target is .PHONY and every .PHONY name a target"
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    listed = set(re.findall(r"^make (\S+) ", out, re.M))
    assert listed == targets, f"missing from make help: {sorted(targets - listed)}"


def test_python_m_labkit_works_from_the_repository_root():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "labkit", "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: labkit")


def test_the_cold_test_script_passes_shellcheck():
    script = os.path.join(ROOT, "scripts", "cold-test.sh")
    assert os.access(script, os.X_OK), "scripts/cold-test.sh is not executable"
    result = subprocess.run(["shellcheck", "--severity=style", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
