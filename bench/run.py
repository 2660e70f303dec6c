"""The kit's benchmark (`make bench`): a measurement, not a timed test.

It brings up a lab of its own (BENCH_LAB, default concourse-gpu-kit-bench;
proxy port BENCH_PROXY_PORT, default 8453) with labkit's own functions, so
that a lab someone is using is never touched, and measures in one run:

1. cold converge of the lab (web node, two workers) from fresh containers,
   split per role and per tier (ansible.posix.json callback);
2. a second, no-change run (wall time, changed tasks);
3. Ansible's levers on that no-change run, each off/on against the same
   baseline (pipelining, fact caching, forks, strategy free), and fewer
   round trips: a package list in one apt task against one per package
   (bench/playbooks/roundtrips.yml);
4. re-provisioning one worker whose root disk is wiped (the container is
   re-created, cache_hub's volume stays): wall time and the bytes that came
   back into cache_hub (needs Concourse);
5. scaling: 1, 2, 4 and 8 fresh workers converged at once (common + the
   worker tier);
6. the floor: the same Debian packages and service starts done directly in
   fresh containers by bench/floor/*.sh, no Ansible;
7. readiness.py against a stand-in that turns ready at a known moment.

Absolute seconds move with the load, so results are ratios taken in this run.
Writes bench/results.md, bench/results.json and bench/results.png.
BENCH_QUICK=1 runs a shorter set (scaling 1 and 4, two levers); BENCH_SCALE
and BENCH_LEVERS choose the sets. results.md is rewritten after each stage.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, "bench")
WORK_DIR = os.path.join(ROOT, ".cache", "bench")

# labkit reads the lab's name when it is imported: the bench's own lab.
LAB_NAME = os.environ.get("BENCH_LAB", "concourse-gpu-kit-bench")
os.environ["LABKIT_LAB"] = LAB_NAME
os.environ["LABKIT_PROXY_PORT"] = os.environ.get("BENCH_PROXY_PORT", "8453")
# scripts/ first: the repository root's labkit.py is only `python -m labkit`'s shim.
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "scripts"))

from labkit import concourse, lab  # noqa: E402
from labkit.shell import run as sh  # noqa: E402

from bench import parse  # noqa: E402
from bench.standin import ReadyLater  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
# BENCH_SCALE="1 2 4 8" and BENCH_LEVERS="pipelining,fact,forks,strategy"
# choose the sets; BENCH_QUICK=1 means "1 4" and "pipelining,fact".
SCALE_SIZES = tuple(int(n) for n in os.environ.get(
    "BENCH_SCALE", "1 4" if QUICK else "1 2 4 8").split())
LEVER_KEYS = os.environ.get("BENCH_LEVERS", "pipelining,fact" if QUICK
                            else "pipelining,fact,forks,strategy").split(",")
READINESS_TRIALS = 3 if QUICK else 5
READINESS_DELAY = 3.0
FIXED_SLEEP = 60.0

LEVERS = (
    # name, what "off"/"on" means, environment of the variant, which side the variant is
    ("pipelining", {"ANSIBLE_PIPELINING": "False"}, "off"),
    ("fact caching (jsonfile)", {"ANSIBLE_CACHE_PLUGIN": "memory"}, "off"),
    ("forks=10", {"ANSIBLE_FORKS": "1"}, "off"),
    ("strategy: free", {"ANSIBLE_STRATEGY": "free"}, "on"),
)


def log(message: str) -> None:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%H:%M:%S")
    print(f"bench {stamp}: {message}", flush=True)


class Playbook:
    """One ansible-playbook run with the json callback; stdout kept under .cache/bench."""

    def __init__(self, name: str, args: list[str], extra_env: dict | None = None):
        self.name = name
        env = dict(os.environ)
        env.update({
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            # Only the json document on stdout (profile_tasks would print into it).
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.json",
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": os.path.join(WORK_DIR, "facts"),
            "ANSIBLE_NOCOLOR": "1",
        })
        env.update(extra_env or {})
        log(f"{name}: ansible-playbook {' '.join(args)}"
            + (f" ({' '.join(f'{k}={v}' for k, v in (extra_env or {}).items())})" if extra_env else ""))
        started = time.monotonic()
        proc = subprocess.run(["ansible-playbook", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        self.wall = time.monotonic() - started
        self.rc = proc.returncode
        with open(os.path.join(WORK_DIR, f"{name}.out"), "w", encoding="utf-8") as handle:
            handle.write(proc.stdout)
        with open(os.path.join(WORK_DIR, f"{name}.err"), "w", encoding="utf-8") as handle:
            handle.write(proc.stderr)
        try:
            self.doc = parse.load_json_output(proc.stdout)
        except ValueError:
            self.doc = None
        self.recap = parse.recap(self.doc) if self.doc else {}
        self.changed = self.recap.get("changed")
        log(f"{name}: rc={self.rc} wall={self.wall:.1f}s changed={self.changed}")
        if self.rc != 0:
            log(f"{name}: FAILED, see {os.path.join(WORK_DIR, name + '.out')}")

    @property
    def ok(self) -> bool:
        return self.rc == 0 and self.doc is not None

    def summary(self) -> dict:
        return {"wall": self.wall, "rc": self.rc, "changed": self.changed, "recap": self.recap,
                "per_role": parse.per_role(self.doc) if self.doc else {},
                "per_play": parse.per_play(self.doc) if self.doc else [],
                "slowest": parse.slowest_tasks(self.doc) if self.doc else [],
                "changed_tasks": parse.changed_tasks(self.doc) if self.doc else []}


def machine() -> dict:
    with open("/proc/meminfo", encoding="ascii") as handle:
        mem_kib = int(handle.readline().split()[1])
    others = sh(["docker", "ps", "--format", "{{.Names}}"], capture=True,
                check=False).stdout.decode().split()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(), "kernel": platform.release(),
        "cpus": os.cpu_count(), "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "loadavg": os.getloadavg(),
        "other_containers": len([n for n in others if not n.startswith(LAB_NAME)]),
    }


def site_args(archive: str | None) -> list[str]:
    return ["-i", "inventories/lab/hosts.yml", "site.yml",
            *([] if archive else ["--skip-tags", "concourse"])]


# --- stages -------------------------------------------------------------------

def stage_cold(archive: str | None) -> dict:
    lab.down()
    shutil.rmtree(os.path.join(WORK_DIR, "facts"), ignore_errors=True)
    lab.access_values(os.path.join(ROOT, ".lab"))  # the lab's secrets, made once
    started = time.monotonic()
    lab.up_hosts()
    containers = time.monotonic() - started
    run = Playbook("cold-converge", [*site_args(archive), "--flush-cache"])
    return {"containers": containers, **run.summary()}


def stage_levers(archive: str | None) -> dict:
    chosen = [lever for lever in LEVERS if lever[0].split()[0].split("=")[0].split(":")[0]
              in LEVER_KEYS]
    runs = {"baseline-1": Playbook("nochange", site_args(archive))}
    for name, env, _side in chosen:
        runs[name] = Playbook("lever-" + name.split()[0].replace("=", "").replace(":", ""),
                              site_args(archive), env)
    if chosen:
        runs["baseline-2"] = Playbook("nochange-2", site_args(archive))
    baselines = [runs[k].wall for k in ("baseline-1", "baseline-2") if k in runs and runs[k].ok]
    base = sum(baselines) / len(baselines) if baselines else None
    levers = []
    for name, env, side in chosen:
        variant = runs[name]
        on, off = (base, variant.wall) if side == "off" else (variant.wall, base)
        levers.append({"lever": name, "variant": " ".join(f"{k}={v}" for k, v in env.items()),
                       "on": on, "off": off, "variant_ok": variant.ok,
                       "variant_changed": variant.changed,
                       "gain": parse.ratio(off, on)})
    return {"nochange": runs["baseline-1"].summary(),
            "nochange_2": runs["baseline-2"].summary() if "baseline-2" in runs else None,
            "baseline_mean": base, "levers": levers}


def stage_roundtrips() -> dict:
    """One apt task for common's package list against one apt run per package."""
    import yaml  # noqa: PLC0415 - PyYAML comes with ansible-core
    playbook = os.path.join(BENCH_DIR, "playbooks", "roundtrips.yml")
    with open(playbook, encoding="utf-8") as handle:
        one_name, each_name = (task["name"] for task in yaml.safe_load(handle)[0]["tasks"])
    with open(os.path.join(ROOT, "roles", "common", "defaults", "main.yml"), encoding="utf-8") as handle:
        packages = len(yaml.safe_load(handle)["common_packages"])
    run = Playbook("roundtrips", ["-i", "inventories/lab/hosts.yml", playbook])
    one, each = (parse.task_seconds(run.doc, name) if run.doc else None for name in (one_name, each_name))
    return {"rc": run.rc, "changed": run.changed, "one_task": one, "per_package": each,
            "packages": packages, "gain": parse.ratio(each, one)}


def _cache_listing(container: str) -> dict[str, tuple]:
    out = sh(["docker", "exec", container, "find", "/srv/cache_hub", "-xdev", "-type", "f",
              "-printf", "%i %s %T@ %p\\n"], capture=True, check=False).stdout.decode()
    files = {}
    for line in out.splitlines():
        inode, size, mtime, path = line.split(" ", 3)
        files[path] = (int(inode), int(size), mtime)
    return files


def stage_reprovision(archive: str | None) -> dict:
    if not archive:
        return {"skipped": concourse.SKIP_REASON}
    host = next(h for h in lab.HOSTS if h.name == "gpu-worker-1")
    # A stand-in for downloaded weights (random bytes, made by the bench): a
    # re-provisioned worker must find it where it was, not fetch it again.
    sh(["docker", "exec", host.container, "sh", "-c",
        "head -c 67108864 /dev/urandom > /srv/cache_hub/bench-seed.bin"], capture=True)
    before = _cache_listing(host.container)
    started = time.monotonic()
    sh(["docker", "container", "rm", "-f", host.container], capture=True)
    lab.up_hosts((host,))
    recreate = time.monotonic() - started
    run = Playbook("reprovision", ["-i", "inventories/lab/hosts.yml",
                                   "playbooks/reprovision-worker.yml", "--limit", "gpu-worker-1"])
    after = _cache_listing(host.container)
    return {"recreate": recreate, "playbook": run.wall, "wall": recreate + run.wall,
            "rc": run.rc, "changed": run.changed,
            "cache_files_before": len(before), "cache_bytes_before": sum(m[1] for m in before.values()),
            "cache_files_after": len(after), "cache_bytes_after": sum(m[1] for m in after.values()),
            "redownloaded_bytes": parse.redownloaded_bytes(before, after)}


def stage_scaling(archive: str | None, results: dict, progress) -> dict:
    """results gets one entry per size as it is measured (progress() reports it)."""
    for size in SCALE_SIZES:
        hosts = tuple(lab.LabHost(f"scale-{i}", "debian12", volumes=(lab.WORKER_WORK_DIR,),
                                  docker_args=lab.WORKER_DOCKER_ARGS) for i in range(1, size + 1))
        lab.down_hosts(hosts)
        started = time.monotonic()
        lab.up_hosts(hosts)
        containers = time.monotonic() - started
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            inventory = os.path.join(tmp, "scale.yml")
            with open(inventory, "w", encoding="utf-8") as handle:
                json.dump({"all": {"children": {"concourse_workers": {
                    "hosts": {h.name: {} for h in hosts}}}}}, handle)
            # The lab's inventory gives the groups and group_vars; the web
            # node's facts come from the fact cache the lab's runs filled.
            run = Playbook(f"scale-{size}", [
                "-i", "inventories/lab/hosts.yml", "-i", inventory,
                "playbooks/common.yml", "playbooks/workers.yml", "--limit", "scale-*",
                *([] if archive else ["--skip-tags", "concourse"])])
        lab.down_hosts(hosts)
        results[size] = {"containers": containers, "wall": run.wall, "rc": run.rc,
                         "changed": run.changed}
        progress()
    return results


FLOOR_HOSTS = (
    ("web", "debian12", "web.sh"),
    ("gpu-worker-1", "debian12", "gpu-worker.sh"),
    ("worker-2", "debian13", "worker.sh"),
)


def stage_floor(archive: str | None) -> dict:
    hosts = tuple(lab.LabHost(f"floor-{name}", image, docker_args=lab.WORKER_DOCKER_ARGS
                              if "worker" in name else ()) for name, image, _ in FLOOR_HOSTS)
    lab.down_hosts(hosts)
    lab.up_hosts(hosts)
    times: dict[str, float] = {}
    codes: dict[str, int] = {}

    def one(host, script):
        started = time.monotonic()
        sh(["docker", "exec", host.container, "mkdir", "-p", "/opt/floor"], capture=True)
        sh(["docker", "cp", os.path.join(BENCH_DIR, "floor", "common.sh"),
            f"{host.container}:/opt/floor/common.sh"], capture=True)
        sh(["docker", "cp", os.path.join(BENCH_DIR, "floor", script),
            f"{host.container}:/opt/floor/floor.sh"], capture=True)
        if archive:
            sh(["docker", "cp", archive, f"{host.container}:/opt/floor/concourse.tgz"], capture=True)
        proc = sh(["docker", "exec", host.container, "sh", "/opt/floor/floor.sh"], capture=True, check=False)
        times[host.name] = time.monotonic() - started
        codes[host.name] = proc.returncode
        if proc.returncode:
            log(f"floor {host.name}: exit {proc.returncode}: {proc.stderr.decode()[-500:]}")

    started = time.monotonic()
    threads = [threading.Thread(target=one, args=(host, script))
               for host, (_, _, script) in zip(hosts, FLOOR_HOSTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    lab.down_hosts(hosts)
    log(f"floor: wall={wall:.1f}s {times} exit codes {codes}")
    return {"wall": wall, "per_host": times, "rc": max(codes.values(), default=1)}


def stage_readiness() -> dict:
    script = os.path.join(ROOT, "pipelines", "indextts2", "scripts", "readiness.py")
    latencies, codes = [], []
    for _ in range(READINESS_TRIALS):
        double = ReadyLater(READINESS_DELAY)
        double.start()
        proc = subprocess.run([sys.executable, script, "--url", double.url, "--deadline", "30"],
                              capture_output=True, text=True)
        finished = time.monotonic()
        double.stop()
        codes.append(proc.returncode)
        if double.ready_at is not None:
            latencies.append(finished - double.ready_at)
    log(f"readiness: latencies {[round(x, 3) for x in latencies]} exit codes {codes}")
    return {"trials": READINESS_TRIALS, "ready_after": READINESS_DELAY, "latencies": latencies,
            "codes": codes, "median": parse.median(latencies) if latencies else None,
            "max": max(latencies) if latencies else None,
            "fixed_sleep": FIXED_SLEEP, "fixed_sleep_latency": FIXED_SLEEP - READINESS_DELAY}


# --- main ---------------------------------------------------------------------

def main() -> int:
    os.makedirs(WORK_DIR, exist_ok=True)
    results: dict = {"machine": machine(), "quick": QUICK, "lab": LAB_NAME}
    log(f"machine: {results['machine']}")
    archive = concourse.find_archive()
    results["concourse"] = ({"archive": os.path.basename(archive)} if archive else
                            {"skipped": concourse.SKIP_REASON,
                             "left_out": "the Concourse tiers (tag concourse: concourse_release, "
                                         "concourse_web, concourse_worker, concourse_pipelines) "
                                         "and the re-provisioning stage"})
    if not archive:
        print(concourse.SKIP_LINE, flush=True)
    from bench import report  # noqa: PLC0415 - matplotlib is installed for the bench only
    started = time.monotonic()
    stages = (("readiness", stage_readiness), ("cold", lambda: stage_cold(archive)),
              # The floor right after the converge it is compared with.
              ("floor", lambda: stage_floor(archive)),
              ("nochange", lambda: stage_levers(archive)),
              ("roundtrips", stage_roundtrips),
              ("reprovision", lambda: stage_reprovision(archive)),
              ("scaling", lambda: stage_scaling(archive, results.setdefault("scaling", {}),
                                                lambda: report.write(results, BENCH_DIR))))
    try:
        for key, stage in stages:
            results[key] = stage()
            results["bench_wall"] = time.monotonic() - started
            # Rewritten after each stage: an interrupted bench still says
            # what it measured (and the rest reads "not measured").
            report.write(results, BENCH_DIR)
    finally:
        results["bench_wall"] = time.monotonic() - started
        results["load_at_end"] = os.getloadavg()
        with open(os.path.join(WORK_DIR, "results.json"), "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)
        if os.environ.get("BENCH_KEEP_LAB", "") in ("", "0"):
            lab.down()
    report.write(results, BENCH_DIR)
    log(f"wrote {os.path.join(BENCH_DIR, 'results.md')} and results.png "
        f"(bench took {results['bench_wall'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
