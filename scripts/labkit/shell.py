"""Small subprocess helpers shared by the labkit commands."""
from __future__ import annotations

import shlex
import subprocess
import sys
from typing import Mapping, Sequence


class CommandError(RuntimeError):
    """A command failed; the message carries its output tail."""


# What to install when a program labkit runs is missing (README.md, "What the host needs").
MISSING_HINTS = {
    "go": "install a Go toolchain (apt-get install golang-go, or https://go.dev/dl/) to build "
          "the upstream artifacts; `make artifacts` needs it, `make lint` and `make unit` do not",
    "docker": "run `make engine` (Debian's docker.io) or install Docker",
    "ansible-playbook": "run `make venv` and use the Makefile targets (they put .venv/bin on PATH)",
}


def run(argv: Sequence[str], *, capture: bool = False, check: bool = True,
        env: Mapping[str, str] | None = None, cwd: str | None = None,
        input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
    """Run argv; on failure raise CommandError with the last lines of output."""
    try:
        proc = subprocess.run(
            list(argv), cwd=cwd, env=dict(env) if env is not None else None,
            input=input_bytes,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None,
        )
    except FileNotFoundError as err:
        raise CommandError(f"{argv[0]} is not installed (or not on PATH): "
                           f"{MISSING_HINTS.get(argv[0], 'install it and try again')}") from err
    if check and proc.returncode != 0:
        tail = b""
        if capture:
            tail = (proc.stdout or b"")[-2000:] + (proc.stderr or b"")[-2000:]
        raise CommandError(
            f"command failed (exit {proc.returncode}): {shlex.join(argv)}\n"
            + tail.decode(errors="replace"))
    return proc


def output(argv: Sequence[str], **kwargs) -> str:
    """Run argv and return its standard output, stripped."""
    return run(argv, capture=True, **kwargs).stdout.decode().strip()


def say(message: str) -> None:
    print(f"labkit: {message}", file=sys.stderr, flush=True)
