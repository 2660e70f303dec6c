"""Check a Concourse pipeline against ol-concourse's pydantic model of the pipeline schema.

fly cannot run where `make test` runs without a release archive, so the unit
tests check every pipeline against a maintained model of Concourse's schema:
the pydantic classes of ol-concourse (MIT Open Learning's Concourse DSL,
generated from the Concourse pipeline JSON schema; pinned in
requirements.txt). With an archive, the end-to-end suite also runs
`fly validate-pipeline --strict` on the same files and checks both agree.

The package is a pipeline *builder*: it types a job's plan and every hook as
its abstract `Step`, which validates nothing. So this module walks the plan
itself and validates each step with the package's model for that kind of
step (get, put, task, set_pipeline, load_var, in_parallel, do, try), found by
the key that names it, as Concourse does. Every step model forbids unknown
keys, as `fly validate-pipeline --strict` does.

Where the model is weaker or stricter than Concourse 8.2.5 (seen in
ol-concourse 0.5.3, the newest release that installs on Python 3.11; 0.6 and
later need Python 3.13):
- every field is optional: a job without a name or plan, a resource without
  a type, pass the model (fly rejects them);
- durations (timeout, check_every) are any string (0.7+ checks Go durations);
- no cross-references: a `get` of an undeclared resource passes (fly rejects
  it); tests/unit/test_pipelines.py checks ours;
- task `params` must be strings, while Concourse also takes numbers and
  booleans (it passes their JSON text to the task): our pipelines quote them.

Variables are filled in as fly does with `-l vars.yml`: a value that is
exactly `((name))` takes the variable's YAML value, a `((name))` inside a
longer string is replaced by its text.
"""
import re
import warnings

import pydantic
import yaml

with warnings.catch_warnings():
    # 0.5.3 calls pydantic 1's update_forward_refs at import.
    warnings.simplefilter("ignore", DeprecationWarning)
    from ol_concourse.lib.models import pipeline as model

VAR = re.compile(r"\(\(([a-zA-Z0-9_.-]+)\)\)")

# The key that makes a dict a step of that kind, in Concourse's order of precedence.
STEP_MODELS = [
    ("in_parallel", model.InParallelStep),
    ("do", model.DoStep),
    ("try", model.TryStep),
    ("set_pipeline", model.SetPipelineStep),
    ("load_var", model.LoadVarStep),
    ("get", model.GetStep),
    ("put", model.PutStep),
    ("task", model.TaskStep),
]
HOOKS = ("on_success", "on_failure", "on_error", "on_abort", "ensure")


class UnknownVariable(KeyError):
    """A ((var)) that the vars given do not define."""


def fill(node, variables):
    """The node with every ((var)) replaced, as fly's -l/-v/-y do."""
    if isinstance(node, dict):
        return {fill(k, variables): fill(v, variables) for k, v in node.items()}
    if isinstance(node, list):
        return [fill(v, variables) for v in node]
    if isinstance(node, str):
        whole = VAR.fullmatch(node)
        if whole:
            if whole.group(1) not in variables:
                raise UnknownVariable(whole.group(1))
            return variables[whole.group(1)]

        def text(match):
            if match.group(1) not in variables:
                raise UnknownVariable(match.group(1))
            return str(variables[match.group(1)])
        return VAR.sub(text, node)
    return node


def load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _errors(where, error: pydantic.ValidationError):
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"])
        yield f"{where}{'.' + loc if loc else ''}: {item['msg']}"


def _step_kind(step):
    for key, step_model in STEP_MODELS:
        if key in step:
            return key, step_model
    return None, None


def check_step(step, where):
    """Errors for one step and every step nested in it."""
    if not isinstance(step, dict):
        return [f"{where}: a step must be a mapping, not {type(step).__name__}"]
    key, step_model = _step_kind(step)
    if key is None:
        return [f"{where}: no step configured (none of {', '.join(k for k, _ in STEP_MODELS)})"]
    label = f"{where}.{key}({step[key]})" if isinstance(step[key], str) else f"{where}.{key}"
    problems = []
    try:
        step_model.model_validate(step)
    except pydantic.ValidationError as error:
        problems += _errors(label, error)
    if key == "in_parallel":
        inner = step["in_parallel"]
        inner = inner.get("steps") if isinstance(inner, dict) else inner
        for n, sub in enumerate(inner or []):
            problems += check_step(sub, f"{label}[{n}]")
    elif key == "do":
        for n, sub in enumerate(step["do"] or []):
            problems += check_step(sub, f"{label}[{n}]")
    elif key == "try":
        problems += check_step(step["try"], label)
    for hook in HOOKS:
        if hook in step:
            problems += check_step(step[hook], f"{label}.{hook}")
    return problems


def check_task_config(config, where):
    try:
        model.TaskConfig.model_validate(config)
    except pydantic.ValidationError as error:
        return list(_errors(where, error))
    return []


def check_pipeline(config):
    """Every way the config (variables filled in) differs from the model; empty when it conforms."""
    if not isinstance(config, dict):
        return ["the pipeline must be a mapping"]
    problems = []
    try:
        model.Pipeline.model_validate(config)
    except pydantic.ValidationError as error:
        problems += _errors("pipeline", error)
    for n, job in enumerate(config.get("jobs") or []):
        if not isinstance(job, dict):
            continue
        where = f"jobs[{n}]({job.get('name')})"
        for m, step in enumerate(job.get("plan") or []):
            problems += check_step(step, f"{where}.plan[{m}]")
        for hook in HOOKS:
            if hook in job:
                problems += check_step(job[hook], f"{where}.{hook}")
    return problems


def task_steps(config):
    """Every task step with a `file`, hooks and nested steps included."""
    def walk(step):
        if not isinstance(step, dict):
            return
        if "task" in step and "file" in step:
            yield step
        inner = step.get("in_parallel")
        inner = inner.get("steps") if isinstance(inner, dict) else inner
        for sub in [*(inner or []), *(step.get("do") or []), step.get("try"), *(step.get(h) for h in HOOKS)]:
            yield from walk(sub)

    for job in config.get("jobs") or []:
        for step in [*(job.get("plan") or []), *(job.get(h) for h in HOOKS)]:
            yield from walk(step)
