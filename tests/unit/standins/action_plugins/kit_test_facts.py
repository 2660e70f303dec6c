"""Test double: sets the facts it is given, as a fact-gathering module would.

tests/unit/test_bad_input.py uses it to show a host with an operating system
that this machine is not (an unsupported distribution). It gathers nothing.
"""
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    """Return the task's `facts` argument as the host's facts."""

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        return {"changed": False, "ansible_facts": dict(self._task.args.get("facts") or {})}
