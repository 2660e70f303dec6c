"""No secret shows: not in `ansible-playbook -vv --diff`, not in a process list, not in a file others can read.

Against the lab (make lab). The secrets are the ones the kit generated for it
(every file under .lab/secrets: passwords, private keys) and every private key
on the hosts. Before the run the files the roles render from those secrets are
removed from the hosts, so the roles write them again while the output is
recorded: the run has something to leak, and the test asserts that it changed
those files (a run that changed nothing would prove nothing).
"""
from __future__ import annotations

import glob
import os
import subprocess
import threading
import time

from conftest import LAB_DIR, ROOT

HOSTS = ("web", "gpu-worker-1", "worker-2")

# Files on the hosts that the roles render from a secret, removed before the
# recorded run so that it writes them again. Globs; missing ones are fine.
RENDERED = {
    "web": ["/etc/nginx/concourse-gpu-kit.htpasswd", "/etc/concourse/web.env", "/etc/concourse/web/*"],
    "gpu-worker-1": ["/etc/concourse/worker/worker_key", "/etc/concourse/worker/worker.env"],
    "worker-2": ["/etc/concourse/worker/worker_key", "/etc/concourse/worker/worker.env"],
}

# Walks the host's file system (not /proc, /sys, /dev) and prints every file
# that holds a needle or a private key, with its mode. Sent on stdin, so the
# needles never appear in a command line.
SCAN = r'''
import os, stat, sys
needles = [bytes.fromhex(h) for h in %(needles)r]
skip = ("/proc", "/sys", "/dev", "/usr/share", "/usr/lib", "/var/lib/dpkg", "/var/cache")
for top, dirs, files in os.walk("/"):
    if top.startswith(skip):
        dirs[:] = []
        continue
    for name in files:
        path = os.path.join(top, name)
        try:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or st.st_size > 4 << 20:
                continue
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        hits = [i for i, n in enumerate(needles) if n in data]
        if hits or b"PRIVATE KEY-----" in data:
            print("%%o %%s %%s" %% (stat.S_IMODE(st.st_mode), ",".join(map(str, hits)) or "key", path))
'''


def secrets_of_the_lab() -> dict[str, str]:
    """{needle: where it comes from}: each generated secret, and each line of a private key's body."""
    needles = {}
    for path in glob.glob(os.path.join(LAB_DIR, "secrets", "**", "*"), recursive=True):
        if not os.path.isfile(path) or path.endswith(".pub"):
            continue
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read()
        name = os.path.relpath(path, LAB_DIR)
        if "PRIVATE KEY-----" in text:
            for line in text.splitlines():
                if len(line) >= 40 and "-----" not in line:
                    needles[line.strip()] = name
        elif text.split():
            value = text.split()[0]
            if len(value) >= 12:
                needles[value] = name
    return needles


class ProcessWatch(threading.Thread):
    """Samples every host's process list (ps -eo args) while a run goes on."""

    def __init__(self, lab):
        super().__init__(daemon=True)
        self.lab, self.seen, self.samples = lab, set(), 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for host in HOSTS:
                done = self.lab.exec(host, "ps", "-eo", "args", check=False, timeout=30)
                self.seen.update(done.stdout.splitlines())
            self.samples += 1
            time.sleep(0.2)


def test_no_secret_in_the_output_the_process_list_or_a_readable_file(lab, tmp_path):
    needles = secrets_of_the_lab()
    assert needles, f"no generated secrets under {LAB_DIR}/secrets: is the lab up?"
    for host, patterns in RENDERED.items():
        lab.sh(host, "rm -f " + " ".join(patterns))

    watch = ProcessWatch(lab)
    watch.start()
    try:
        run = subprocess.run(["ansible-playbook", "-vv", "--diff", "-i", "inventories/lab/hosts.yml", "site.yml",
                              *lab.playbook_args()],
                             cwd=ROOT, env=lab.playbook_env(), capture_output=True, text=True, timeout=3600)
    finally:
        watch.stop.set()
        watch.join()
    (tmp_path / "site-vv.log").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "changed: [web]" in run.stdout, "the run rewrote nothing on the web node; it proves nothing"

    leaked = sorted({source for needle, source in needles.items() if needle in run.stdout or needle in run.stderr})
    assert not leaked, f"ansible-playbook -vv --diff printed the secrets of {leaked} (log: {tmp_path}/site-vv.log)"

    assert watch.samples >= 3, f"the process list was read only {watch.samples} times"
    shown = sorted({source for needle, source in needles.items() if any(needle in line for line in watch.seen)})
    assert not shown, f"a process list on the hosts showed the secrets of {shown}"

    readable = []
    order = list(needles)
    script = SCAN % {"needles": [needle.encode().hex() for needle in order]}
    for host in HOSTS:
        found = subprocess.run(["docker", "exec", "-i", lab.container(host), "python3", "-"], input=script,
                               capture_output=True, text=True, timeout=600)
        assert found.returncode == 0, found.stderr
        for line in found.stdout.splitlines():
            mode, what, path = line.split(" ", 2)
            if int(mode, 8) & 0o004:
                held = "a private key" if what == "key" else ", ".join(sorted({needles[order[int(i)]]
                                                                                for i in what.split(",")}))
                readable.append(f"{host}:{path} (mode {mode}, holds {held})")
    assert not readable, "files holding a secret are readable by other users:\n" + "\n".join(readable)
