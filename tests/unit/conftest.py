import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import importlib.util
import socket

PIPELINE_SCRIPTS = os.path.join(ROOT, "pipelines", "indextts2", "scripts")
STANDINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "standins")


def load_script(name):
    """Import one of pipelines/indextts2/scripts/*.py as a module."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(PIPELINE_SCRIPTS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
