"""The nvidia_container_toolkit role's preflight on this machine, which has no NVIDIA driver.

The role runs for real against localhost with only its preflight tag: a GPU
worker without a driver must stop with a message that says what to do, and
bad input must stop before any change, naming the variable.
"""
import os
import subprocess
import sys

from conftest import ROOT

PLAY = """
- hosts: all
  gather_facts: false
  roles:
    - role: nvidia_container_toolkit
"""


def preflight(tmp_path, *extra):
    (tmp_path / "play.yml").write_text(PLAY)
    env = dict(os.environ, ANSIBLE_ROLES_PATH=os.path.join(ROOT, "roles"), ANSIBLE_NOCOLOR="1",
               PATH=os.path.dirname(sys.executable) + ":/usr/bin:/bin")
    return subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
         "--tags", "nvidia_container_toolkit_preflight", *extra, str(tmp_path / "play.yml")],
        capture_output=True, text=True, env=env, timeout=300)


def test_a_gpu_worker_without_driver_stops_with_the_fix(tmp_path):
    result = preflight(tmp_path)
    assert result.returncode == 2, result.stdout
    assert "localhost is a GPU worker, but there is no /usr/bin/nvidia-smi: the NVIDIA driver is not installed" in result.stdout
    assert "nvidia_container_toolkit_require_gpu: false" in result.stdout


def test_a_lab_worker_without_gpu_goes_on_and_says_so(tmp_path):
    result = preflight(tmp_path, "-e", "nvidia_container_toolkit_require_gpu=false")
    assert result.returncode == 0, result.stdout
    assert "No GPU, and nvidia_container_toolkit_require_gpu is false" in result.stdout


def test_split_package_versions_are_refused(tmp_path):
    result = preflight(tmp_path, "-e", '{"nvidia_container_toolkit_packages": ["nvidia-container-toolkit"]}')
    assert result.returncode == 2
    assert "nvidia_container_toolkit_packages must be exactly" in result.stdout


def test_a_malformed_version_is_refused_by_name(tmp_path):
    result = preflight(tmp_path, "-e", "nvidia_container_toolkit_version=latest")
    assert result.returncode == 2 and "nvidia_container_toolkit_version 'latest'" in result.stdout


def test_argument_specs_name_the_variable(tmp_path):
    result = preflight(tmp_path, "-e", '{"nvidia_container_toolkit_require_gpu": "perhaps"}')
    assert result.returncode == 2 and "nvidia_container_toolkit_require_gpu" in result.stdout


def test_a_driver_that_cannot_list_gpus_stops_with_its_own_words(tmp_path):
    """nvidia-smi present but failing, as on a host whose kernel module is not loaded.

    The fake nvidia-smi below is a test double for the driver's CLI; on a real
    H100 (driver 580.159.04) the same preflight listed the GPU and went on.
    """
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\" >&2\nexit 9\n")
    smi.chmod(0o755)
    result = preflight(tmp_path, "-e", f"_nvidia_container_toolkit_smi={smi}")
    assert result.returncode == 2, result.stdout
    assert ("localhost is a GPU worker, but nvidia-smi failed (exit 9): NVIDIA-SMI has failed because it "
            "couldn't communicate with the NVIDIA driver.\n") in result.stdout.replace("\\n", "\n"), result.stdout
