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

import jinja2
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


def inventory_pipelines():
    """{pipeline file: its vars_files} for every concourse_pipelines_list entry in every inventory."""
    listed = {}
    for path in glob.glob(os.path.join(ROOT, "inventories", "*", "group_vars", "**", "*.yml"), recursive=True):
        for entry in (load(path) or {}).get("concourse_pipelines_list", []):
            listed[entry["file"]] = entry.get("vars_files", [])
    return listed


def test_every_pipeline_is_set_by_an_inventory_with_its_vars_file():
    listed = inventory_pipelines()
    assert PIPELINES, "pipelines/ holds no pipeline: the checks below would check nothing"
    for path in PIPELINES:
        rel = os.path.relpath(path, ROOT)
        assert rel in listed, f"{rel} is set by no inventory's concourse_pipelines_list"
        assert rel.replace(".yml", ".vars.yml") in listed[rel], f"{rel} is set without its vars file"
    for rel, vars_files in listed.items():
        for needed in (rel, *vars_files):
            assert os.path.isfile(os.path.join(ROOT, needed)), f"an inventory sets {needed}, which does not exist"


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


def duration_seconds(text):
    """Seconds in a Concourse duration such as 20m, 1h30m or 90s."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    assert parts and any(parts.groups()), f"{text!r} is not a duration"
    hours, minutes, seconds = (int(p or 0) for p in parts.groups())
    return hours * 3600 + minutes * 60 + seconds


def test_the_gpu_job_runs_where_the_roles_put_the_gpu_and_the_cache():
    """The job's tag resolves to the tag concourse_worker gives gpu_workers; the
    task asks for the two things the GPU worker's hooks provide; GPU builds
    are serialised; the task's timeout outlasts the model load's deadline and
    stays within the 20 minutes the seed allows a first download."""
    pipeline = load(os.path.join(ROOT, "pipelines", "indextts2.yml"))
    values = load(os.path.join(ROOT, "pipelines", "indextts2.vars.yml"))
    (job,) = pipeline["jobs"]
    assert job["serial"] is True
    task = next(s for s in job["plan"] if s.get("task") == "start-and-smoke")
    (tag,) = [VAR.sub(lambda m: str(values[m.group(1)]), t) for t in task["tags"]]
    worker_defaults = load(os.path.join(ROOT, "roles", "concourse_worker", "defaults", "main.yml"))
    gpu_tags = jinja2.Template(worker_defaults["concourse_worker_tags"]).render(
        inventory_hostname="g1", groups={"gpu_workers": ["g1"]})
    assert tag in yaml.safe_load(gpu_tags), f"tag {tag!r}; the role gives GPU workers {gpu_tags}"
    params = load(os.path.join(ROOT, task["file"][len("kit/"):]))["params"]
    cache_env = load(os.path.join(ROOT, "roles", "cache_hub", "defaults", "main.yml"))["cache_hub_env"]
    assert params[cache_env] == "1" and params["NVIDIA_VISIBLE_DEVICES"] == "all"
    timeout = duration_seconds(VAR.sub(lambda m: str(values[m.group(1)]), task["timeout"]))
    deadline = int(VAR.sub(lambda m: str(values[m.group(1)]), str(task["params"]["READINESS_DEADLINE"])))
    assert deadline < timeout <= 20 * 60
    assert {"on_failure", "on_error"} <= set(task) and {"on_failure", "on_error"} <= set(job)


def test_durations_are_read_as_concourse_writes_them():
    assert [duration_seconds(d) for d in ("20m", "1h30m", "90s", "1h")] == [1200, 5400, 90, 3600]
    with pytest.raises(AssertionError):
        duration_seconds("20 minutes")


@pytest.mark.parametrize("script", sorted(glob.glob(os.path.join(ROOT, "pipelines", "*", "scripts", "*.sh"))),
                         ids=os.path.basename)
def test_shell_scripts_pass_shellcheck(script):
    result = subprocess.run(["shellcheck", "--severity=style", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
