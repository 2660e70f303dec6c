"""Every pipeline and task file in pipelines/ against a model of Concourse's pipeline schema.

The model is ol-concourse's (pinned in requirements.txt; what it does and does
not check is in pipeline_model.py). `fly validate-pipeline --strict` runs on
the same files, and on the broken ones below, in tests/e2e/test_pipelines.py
when a release archive is given; both must agree.
"""
import copy
import glob
import os

import pytest

import pipeline_model
from conftest import ROOT

# The kit's pipelines and the lab's (inventories/lab/pipelines: the IndexTTS2 plumbing run).
PIPELINES = sorted(p for p in glob.glob(os.path.join(ROOT, "pipelines", "*.yml"))
                   + glob.glob(os.path.join(ROOT, "inventories", "*", "pipelines", "*.yml"))
                   if not p.endswith(".vars.yml"))
BROKEN = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "fixtures", "broken-pipelines", "*.yml")))


def rendered(path):
    """The pipeline with its vars file filled in, as `fly ... -l <name>.vars.yml` renders it."""
    return pipeline_model.fill(pipeline_model.load_yaml(path),
                               pipeline_model.load_yaml(path.replace(".yml", ".vars.yml")))


def expected_error(path):
    with open(path, encoding="utf-8") as handle:
        return next(line.split(":", 1)[1].strip() for line in handle if line.startswith("# expect:"))


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: os.path.relpath(p, ROOT))
def test_pipeline_conforms_to_the_schema(path):
    assert pipeline_model.check_pipeline(rendered(path)) == []


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: os.path.relpath(p, ROOT))
def test_task_files_conform_to_the_schema(path):
    config = rendered(path)
    checked = 0
    for step in pipeline_model.task_steps(config):
        assert step["file"].startswith("kit/")
        task = pipeline_model.fill(pipeline_model.load_yaml(os.path.join(ROOT, step["file"][len("kit/"):])),
                                   step.get("vars") or {})
        assert pipeline_model.check_task_config(task, step["file"]) == []
        checked += 1
    assert checked >= 3, "the walk found the job's task steps, hooks included"


@pytest.mark.parametrize("path", BROKEN, ids=os.path.basename)
def test_broken_pipelines_are_rejected(path):
    problems = pipeline_model.check_pipeline(pipeline_model.load_yaml(path))
    assert problems, "the model accepted a broken pipeline"
    assert any(expected_error(path) in problem for problem in problems), problems


def test_a_typo_deep_in_a_hook_is_found():
    """The package types plans and hooks as a bare Step; the walk must still reach them."""
    config = rendered(os.path.join(ROOT, "pipelines", "indextts2.yml"))
    broken = copy.deepcopy(config)
    task = next(s for s in broken["jobs"][0]["plan"] if s.get("task") == "start-and-smoke")
    task["on_failure"] = dict(task["on_failure"], privilegd=True)
    problems = pipeline_model.check_pipeline(broken)
    assert len(problems) == 1 and "on_failure.task(report-failure)" in problems[0] and "privilegd" in problems[0]
    broken = copy.deepcopy(config)
    broken["jobs"][0]["on_error"]["timeout"] = ["2m"]
    assert any("jobs[0](health-check).on_error.task(notify).timeout" in p
               for p in pipeline_model.check_pipeline(broken))


def test_a_variable_missing_from_the_vars_file_is_an_error():
    with pytest.raises(pipeline_model.UnknownVariable, match="gpu_worker_tag"):
        pipeline_model.fill({"tags": ["((gpu_worker_tag))"]}, {})
    assert pipeline_model.fill({"a": "((n))", "b": "x-((n))-y"}, {"n": 3}) == {"a": 3, "b": "x-3-y"}
