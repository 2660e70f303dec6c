"""What the runner reads out of a playbook run: pure functions, no I/O.

ansible-playbook runs with the ansible.posix.json stdout callback; its
document holds every play and task with start and end times and the PLAY
RECAP's counters (`stats`). Under the linear strategy a task's duration is
its wall time across all hosts, so the sum over a role's tasks is the wall
time that role cost the run.
"""
from __future__ import annotations

import datetime
import json
import re
import statistics

# Tasks that belong to no role: gathering facts, plays' own tasks.
NO_ROLE = "(plays)"


def load_json_output(text: str) -> dict:
    """The json callback's document out of stdout (warnings may precede it).

    `ansible-playbook a.yml b.yml` prints one document per playbook: their
    plays are joined and their recaps added up.
    """
    decoder = json.JSONDecoder()
    documents = []
    position = 0
    while True:
        start = text.find("{", position)
        if start < 0:
            break
        try:
            document, end = decoder.raw_decode(text, start)
        except ValueError:
            position = start + 1
            continue
        if isinstance(document, dict) and "plays" in document and "stats" in document:
            documents.append(document)
        position = end
    if not documents:
        raise ValueError("no json callback document (plays/stats) in the playbook's output")
    merged = {"plays": [], "stats": {}}
    for document in documents:
        merged["plays"] += document["plays"]
        for host, counters in document["stats"].items():
            totals = merged["stats"].setdefault(host, {})
            for key, value in counters.items():
                totals[key] = totals.get(key, 0) + int(value)
    return merged


def _seconds(duration: dict) -> float:
    def parse(stamp: str) -> datetime.datetime:
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if not duration or "end" not in duration:
        return 0.0
    return (parse(duration["end"]) - parse(duration["start"])).total_seconds()


def role_of(task_name: str) -> str:
    """'common : Install the base packages' -> 'common'."""
    match = re.match(r"^([A-Za-z0-9_.]+) : ", task_name)
    if not match:
        return NO_ROLE
    return match.group(1).rsplit(".", 1)[-1]


def per_role(document: dict) -> dict[str, float]:
    """Seconds per role (tasks outside roles under NO_ROLE), slowest first.

    Under the free strategy each host's task is timed on its own and the
    tasks overlap, so a play's task times can add up to more than its wall
    time; there they are scaled down to the play's wall time.
    """
    totals: dict[str, float] = {}
    for play in document["plays"]:
        in_play: dict[str, float] = {}
        for task in play.get("tasks", []):
            role = role_of(task["task"]["name"])
            in_play[role] = in_play.get(role, 0.0) + _seconds(task["task"].get("duration", {}))
        summed, wall = sum(in_play.values()), _seconds(play["play"].get("duration", {}))
        scale = wall / summed if wall and summed > wall else 1.0
        for role, seconds in in_play.items():
            totals[role] = totals.get(role, 0.0) + seconds * scale
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def per_play(document: dict) -> list[tuple[str, float]]:
    """(play name, seconds) in run order."""
    return [(play["play"]["name"], _seconds(play["play"].get("duration", {})))
            for play in document["plays"]]


def slowest_tasks(document: dict, count: int = 10) -> list[tuple[str, float]]:
    tasks = [(task["task"]["name"], _seconds(task["task"].get("duration", {})))
             for play in document["plays"] for task in play.get("tasks", [])]
    return sorted(tasks, key=lambda item: -item[1])[:count]


def task_seconds(document: dict, name: str) -> float | None:
    """Wall seconds of the first task called `name` (None when it did not run)."""
    for play in document["plays"]:
        for task in play.get("tasks", []):
            if task["task"]["name"] == name:
                return _seconds(task["task"].get("duration", {}))
    return None


def recap(document: dict) -> dict[str, int]:
    """The PLAY RECAP summed over hosts: ok, changed, failures, unreachable..."""
    totals: dict[str, int] = {}
    for counters in document["stats"].values():
        for key, value in counters.items():
            totals[key] = totals.get(key, 0) + int(value)
    return totals


def changed_tasks(document: dict) -> list[str]:
    """'host: task' for every task that reported a change."""
    found = []
    for play in document["plays"]:
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                if result.get("changed"):
                    found.append(f"{host}: {task['task']['name']}")
    return found


_RECAP_LINE = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$")


def parse_recap_text(text: str) -> dict[str, dict[str, int]]:
    """The default callback's PLAY RECAP lines, per host (for logs of plain runs)."""
    hosts: dict[str, dict[str, int]] = {}
    in_recap = False
    for line in text.splitlines():
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap:
            match = _RECAP_LINE.match(line.strip())
            if match:
                hosts[match.group(1)] = {key: int(value) for key, value in
                                         re.findall(r"(\w+)=(\d+)", match.group(2))}
            elif line.strip():
                in_recap = False
    return hosts


def redownloaded_bytes(before: dict, after: dict) -> int:
    """Bytes of files that are new, or whose inode or mtime changed.

    before/after: path -> (inode, size, mtime), as `find -printf '%i %s %T@ %p'` gives.
    """
    return sum(meta[1] for path, meta in after.items()
               if path not in before or before[path][0] != meta[0] or before[path][2] != meta[2])


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, None when the denominator is not a positive time."""
    if denominator is None or numerator is None or denominator <= 0:
        return None
    return numerator / denominator


def verdict(value: float | None, target: float, lower_is_better: bool = True) -> str:
    if value is None:
        return "not measured"
    met = value <= target if lower_is_better else value >= target
    return "met" if met else "NOT met"


def median(values: list[float]) -> float:
    return statistics.median(values)
