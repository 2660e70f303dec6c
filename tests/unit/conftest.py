"""Shared helpers, and the sandbox every unit test runs in.

Unit tests are hermetic, and this file enforces it rather than promising it:

- No network. Every test runs with sockets disabled (pytest-socket): a test
  that reaches for a name or an address fails with SocketBlockedError, on
  every machine. A module whose tests talk to a server of their own on
  loopback says so with ``pytestmark = LOOPBACK``; it may then connect to
  127.0.0.1 and nowhere else.
- Nothing written into the checkout, git-ignored folders included: the
  session fails when `git status` shows a file that was not there (or not
  so) before it.
- No Docker, no caches, no home. Before any test module is imported, HOME,
  the artifact cache (LABKIT_ARTIFACT_CACHE, which holds the task image
  too), XDG_CACHE_HOME and Ansible's local temp point into one empty
  temporary folder, and DOCKER_HOST at a socket that does not exist. A test
  that depends on what `make lab` or `make artifacts` left behind fails
  here as it would on a new machine.
"""
import atexit
import contextlib
import http.server
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

try:
    import pytest_socket  # noqa: F401 - the plugin this sandbox relies on
except ImportError as err:  # pragma: no cover - the venv has it
    raise pytest.UsageError("tests/unit needs pytest-socket (requirements.txt): make venv") from err

SANDBOX = tempfile.mkdtemp(prefix="kit-unit-sandbox-")
atexit.register(shutil.rmtree, SANDBOX, True)
SANDBOX_ENV = {
    "HOME": os.path.join(SANDBOX, "home"),
    "XDG_CACHE_HOME": os.path.join(SANDBOX, "home", ".cache"),
    "LABKIT_ARTIFACT_CACHE": os.path.join(SANDBOX, "artifacts"),
    "ANSIBLE_LOCAL_TEMP": os.path.join(SANDBOX, "ansible-tmp"),
    # ansible.cfg caches facts in the checkout's .cache/facts.
    "ANSIBLE_CACHE_PLUGIN_CONNECTION": os.path.join(SANDBOX, "facts"),
    "DOCKER_HOST": "unix://" + os.path.join(SANDBOX, "no-docker-engine.sock"),
}
for _path in (SANDBOX_ENV["HOME"], SANDBOX_ENV["LABKIT_ARTIFACT_CACHE"]):
    os.makedirs(_path)
os.environ.update(SANDBOX_ENV)

# Tests that serve on loopback and talk to it: `pytestmark = LOOPBACK`.
LOOPBACK = pytest.mark.allow_hosts(["127.0.0.1"])


@contextlib.contextmanager
def serving(root):
    """Serve the files of root on loopback (a stand-in release site); yields its base URL."""
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
_CHECKOUT_KEY = pytest.StashKey()


def checkout_state():
    """`git status` of the checkout, untracked and ignored files one by one (but
    the venv and Python's own caches), or None outside a git checkout."""
    proc = subprocess.run(["git", "status", "--porcelain=v1", "--untracked-files=all", "--ignored=traditional",
                           "--", ".", ":(exclude).venv", ":(exclude,glob)**/__pycache__/**",
                           ":(exclude).pytest_cache"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    return set(proc.stdout.splitlines()) if proc.returncode == 0 else None


def pytest_sessionstart(session):
    session.config.stash[_CHECKOUT_KEY] = checkout_state()


def pytest_sessionfinish(session, exitstatus):
    before = session.config.stash.get(_CHECKOUT_KEY, None)
    after = checkout_state()
    if before is None or after is None or after == before:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = "\n".join(f"  {line}" for line in sorted(after - before) or sorted(before - after))
    message = f"the unit tests changed the checkout (write under tmp_path instead):\n{lines}"
    if reporter:
        reporter.write_line(message, red=True)
    else:  # pragma: no cover
        print(message, file=sys.stderr)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(items):
    """Sockets off for every test that did not ask for loopback, however pytest was started."""
    for item in items:
        if item.get_closest_marker("allow_hosts") is None:
            item.add_marker(pytest.mark.disable_socket)


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
