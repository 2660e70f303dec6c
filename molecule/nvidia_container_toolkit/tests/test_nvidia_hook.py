"""NVIDIA's OCI hook in the worker's hooks directory, run by runc as Concourse's containerd would.

There is no GPU and no libnvidia-container here: the tests prove the hook is
written as NVIDIA's nvidia-ctk generates it, that it leaves tasks that ask for
no GPU alone (also beside cache_hub's hook), and that a task asking for GPUs
reaches NVIDIA's hook, which then fails for want of nvidia-container-cli
exactly where a real GPU worker would go on to inject the devices.
"""
import json
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
from runc_bundle import HOOKS_DIR, run_container  # noqa: E402

NVIDIA_HOOK = f"{HOOKS_DIR}/40-nvidia.json"


def test_hook_is_what_nvidia_ctk_generates(host):
    generated = host.run("nvidia-ctk runtime configure --config-mode=oci-hook "
                         "--nvidia-runtime-hook-path=/usr/bin/nvidia-container-runtime-hook")
    assert generated.rc == 0, generated.stderr
    installed = host.file(NVIDIA_HOOK)
    assert installed.mode == 0o644 and installed.user == "root"
    hook = json.loads(installed.content_string)
    assert hook == json.loads(generated.stdout)
    assert hook["stages"] == ["prestart"]
    assert hook["hook"]["path"] == "/usr/bin/nvidia-container-runtime-hook"
    assert host.file(hook["hook"]["path"]).mode & 0o111


def test_both_hooks_share_the_directory(host):
    assert host.file(HOOKS_DIR).listdir() == ["40-nvidia.json", "50-cache-hub.json"]


def test_a_task_without_gpus_passes_nvidia_hook(host):
    out = run_container(host, "echo plain-task")
    assert out.rc == 0, out.stderr
    assert "plain-task" in out.stdout


def test_a_gpu_task_with_cache_hub_passes_without_asking_for_gpus(host):
    token = uuid.uuid4().hex
    host.run_expect([0], f"echo {token} > /srv/cache_hub/weights")
    out = run_container(host, "cat /cache_hub/weights", env=["CACHE_HUB=1"])
    assert out.rc == 0 and token in out.stdout, out.stderr


def test_a_task_asking_for_gpus_reaches_nvidia_hook(host):
    out = run_container(host, "echo should-not-run", env=["NVIDIA_VISIBLE_DEVICES=all"])
    assert out.rc != 0
    assert "should-not-run" not in out.stdout
    # On a real GPU worker, libnvidia-container-tools provides this and the
    # hook mounts the devices; here its absence proves the hook acted.
    assert "nvidia-container-cli" in out.stderr

