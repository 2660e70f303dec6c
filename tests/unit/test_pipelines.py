"""Consistency of pipelines/: what `fly validate-pipeline` cannot see, and a stand-in for none of it.

`fly validate-pipeline --strict` needs the fly binary, which cannot be built
here (README, "What cannot be had here"). These tests check what is ours:
every ((var)) is documented in the vars file and every documented var is
used, every task file and script a step names exists, a task file's
((vars)) are all given by its step, every input is produced by an earlier
step, and the GPU job asks for what the GPU worker provides.
"""
import glob
import os
import re
import subprocess

import pytest
import yaml

from conftest import ROOT

VAR = re.compile(r"\(\(([a-zA-Z0-9_.-]+)\)\)")
PIPELINES = sorted(p for p in glob.glob(os.path.join(ROOT, "pipelines", "*.yml")) if not p.endswith(".vars.yml"))


def load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def steps(plan):
    """Every step in a plan, hooks and nested steps included."""
    for step in plan or []:
        yield step
        for key in ("in_parallel", "do", "aggregate"):
            inner = step.get(key)
            if isinstance(inner, dict):
                inner = inner.get("steps")
            yield from steps(inner)
        for hook in ("on_success", "on_failure", "on_error", "on_abort", "ensure", "try"):
            if hook in step:
                yield from steps([step[hook]])


def all_steps(job):
    yield from steps(job["plan"])
    for hook in ("on_success", "on_failure", "on_error", "on_abort", "ensure"):
        if hook in job:
            yield from steps([job[hook]])


def test_there_is_a_pipeline():
    assert [os.path.basename(p) for p in PIPELINES] == ["indextts2.yml"]


@pytest.mark.parametrize("path", PIPELINES, ids=os.path.basename)
def test_vars_file_documents_exactly_the_vars_used(path):
    with open(path, encoding="utf-8") as handle:
        used = set(VAR.findall(handle.read()))
    documented = set(load(path.replace(".yml", ".vars.yml")))
    assert used - documented == set(), "used but not in the vars file"
    assert documented - used == set(), "in the vars file but never used"


@pytest.mark.parametrize("path", PIPELINES, ids=os.path.basename)
def test_task_files_scripts_and_inputs(path):
    pipeline = load(path)
    resources = {r["name"] for r in pipeline["resources"]}
    for job in pipeline["jobs"]:
        available = set()
        got = set()
        for step in all_steps(job):
            if "get" in step:
                assert step["get"] in resources
                got.add(step["get"])
                available.add(step["get"])
            if "task" not in step:
                continue
            assert step["file"].startswith("kit/"), "task files come from the kit resource"
            task_path = os.path.join(ROOT, step["file"][len("kit/"):])
            assert os.path.isfile(task_path), step["file"]
            with open(task_path, encoding="utf-8") as handle:
                task_text = handle.read()
            task = yaml.safe_load(task_text)
            assert set(VAR.findall(task_text)) <= set(step.get("vars", {})), f"{step['task']}: vars not given"
            assert set(step.get("params", {})) <= set(task.get("params", {})), \
                f"{step['task']}: params the task file does not declare"
            for needed in task.get("inputs", []):
                assert needed.get("optional") or needed["name"] in available, \
                    f"{step['task']}: input {needed['name']} is made by no earlier step"
            available |= {o["name"] for o in task.get("outputs", [])}
            for word in [task["run"]["path"], *task["run"].get("args", [])]:
                if word.startswith("kit/"):
                    script = os.path.join(ROOT, word[len("kit/"):])
                    assert os.access(script, os.X_OK), f"{word} is missing or not executable"
        assert got == resources, "every resource is used by the job"


def test_the_gpu_job_asks_for_the_gpu_worker():
    pipeline = load(os.path.join(ROOT, "pipelines", "indextts2.yml"))
    (job,) = pipeline["jobs"]
    assert job["serial"] is True
    task = next(s for s in job["plan"] if s.get("task") == "start-and-smoke")
    assert task["tags"] == ["((gpu_worker_tag))"] and task["privileged"] is True and task["timeout"]
    params = load(os.path.join(ROOT, task["file"][len("kit/"):]))["params"]
    assert params["CACHE_HUB"] == "1" and params["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert load(os.path.join(ROOT, "pipelines", "indextts2.vars.yml"))["health_check_timeout"] == "20m"
    assert {"on_failure", "on_error"} <= set(task) and {"on_failure", "on_error"} <= set(job)


@pytest.mark.parametrize("script", sorted(glob.glob(os.path.join(ROOT, "pipelines", "*", "scripts", "*.sh"))),
                         ids=os.path.basename)
def test_shell_scripts_pass_shellcheck(script):
    result = subprocess.run(["shellcheck", "--severity=style", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
