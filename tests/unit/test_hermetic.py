"""The sandbox of tests/unit/conftest.py holds: no network, no Docker, no caches, no home."""
import os
import socket
import urllib.request

import pytest
from pytest_socket import SocketBlockedError

from conftest import SANDBOX, SANDBOX_ENV
from labkit import artifacts, taskimage

# pytest-socket warns each time it refuses; here refusing is the point.
pytestmark = pytest.mark.filterwarnings("ignore:A test tried to use socket")


@pytest.fixture(autouse=True)
def not_forced_open(pytestconfig):
    """With --force-enable-socket these would send a DNS query: not a run to check the sandbox in."""
    if pytestconfig.getoption("--force-enable-socket"):
        pytest.skip("--force-enable-socket: the sandbox's network check does not apply")


def test_no_socket_can_be_opened():
    with pytest.raises(SocketBlockedError):
        socket.socket()


def test_no_name_is_resolved():
    with pytest.raises(SocketBlockedError):
        socket.getaddrinfo("deb.example.invalid", 443)


def test_a_download_fails_at_once():
    """What the lab's first version of a unit test reached for: the official Concourse download."""
    with pytest.raises(SocketBlockedError):
        urllib.request.urlopen("https://deb.example.invalid/", timeout=1)  # noqa: S310 - never sent


def test_home_and_caches_are_empty_temporary_folders():
    for name, value in SANDBOX_ENV.items():
        assert os.environ[name] == value, name
    assert os.path.expanduser("~") == os.path.join(SANDBOX, "home")
    cache = artifacts.cache_root()
    assert cache == os.path.join(SANDBOX, "artifacts")
    # What the task image would be looked up under: nothing, on any machine.
    assert not os.path.exists(os.path.join(cache, "task-image", taskimage.TASK_IMAGE.digest("")))
    assert not os.path.exists(os.path.join(cache, "otelcol-kit"))


def test_docker_points_at_no_engine():
    address = os.environ["DOCKER_HOST"]
    assert address.startswith("unix://" + SANDBOX)
    assert not os.path.exists(address[len("unix://"):])
