"""bench/results.md and bench/results.png from the runner's results."""
from __future__ import annotations

import json
import os

from bench import parse

TARGETS = {
    "converge_over_floor": 2.0,
    "nochange_wall": 30.0,
    "scale_8_over_1": 1.5,
    "readiness_latency": 1.0,
}


def _s(value, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f} s"


def _x(value) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def figures(results: dict) -> dict:
    """The headline numbers, as ratios taken within this run."""
    cold = results.get("cold", {})
    floor = results.get("floor", {})
    nochange = results.get("nochange", {}).get("nochange", {})
    scaling = {int(k): v for k, v in results.get("scaling", {}).items()}
    readiness = results.get("readiness", {})
    smallest, largest = (min(scaling), max(scaling)) if scaling else (None, None)
    return {
        "converge_over_floor": parse.ratio(cold.get("wall"), floor.get("wall")),
        "nochange_wall": nochange.get("wall"),
        "nochange_changed": nochange.get("changed"),
        "scale_largest": largest,
        "scale_8_over_1": parse.ratio(scaling[largest]["wall"], scaling[smallest]["wall"])
        if scaling and smallest == 1 and largest > 1 else None,
        "readiness_latency": readiness.get("max"),
        "reprovision_bytes": results.get("reprovision", {}).get("redownloaded_bytes"),
    }


def markdown(results: dict) -> str:
    m = results["machine"]
    f = figures(results)
    cold = results.get("cold", {})
    floor = results.get("floor", {})
    levers = results.get("nochange", {})
    nochange = levers.get("nochange", {})
    reprov = results.get("reprovision", {})
    scaling = {int(k): v for k, v in results.get("scaling", {}).items()}
    ready = results.get("readiness", {})
    lines = [
        "# Benchmark results (`make bench`)",
        "",
        f"- Date: {m['date']}" + (" (BENCH_QUICK: shorter set)" if results.get("quick") else ""),
        f"- Machine: {m['host']}, {m['cpus']} CPUs, {m['memory_gib']} GiB memory, kernel {m['kernel']}; "
        f"load average at start {m['loadavg'][0]:.2f} / {m['loadavg'][1]:.2f} / {m['loadavg'][2]:.2f}; "
        f"{m['other_containers']} other containers running.",
        "- Absolute seconds move with the machine's load from run to run; the ratios, taken within "
        "one run, are the figures to compare."
        + (f" Load average at the end: {results['load_at_end'][0]:.2f} / {results['load_at_end'][1]:.2f}"
           f" / {results['load_at_end'][2]:.2f}." if results.get("load_at_end") else ""),
        "- Lab hosts are systemd containers reached with `docker exec` (no SSH); every fresh container "
        "downloads its apt lists and packages from the Debian archive (not cached); images and the "
        "kit's artifacts are cached.",
    ]
    lines += [f"- Note: {note}" for note in results.get("notes", [])]
    if "archive" in results.get("concourse", {}):
        lines.append(f"- Concourse tiers included (release archive {results['concourse']['archive']}).")
    else:
        lines.append(f"- SKIPPED: {results['concourse']['skipped']}: left out "
                     f"{results['concourse']['left_out']}.")
    lines += [
        "",
        "## Targets",
        "",
        "| Figure | Measured | Target | Verdict |",
        "|---|---|---|---|",
        f"| Cold converge / floor | {_x(f['converge_over_floor'])} ({_s(cold.get('wall'))} / "
        f"{_s(floor.get('wall'))}) | <= 2x | {parse.verdict(f['converge_over_floor'], 2.0)} |",
        f"| No-change run | {_s(f['nochange_wall'])}, {f['nochange_changed']} changed | <= 30 s, 0 changed | "
        + ("not measured" if f["nochange_wall"] is None
           else "met" if f["nochange_wall"] <= 30 and f["nochange_changed"] == 0 else "NOT met") + " |",
        f"| time({f['scale_largest'] if f['scale_8_over_1'] is not None else 8} workers) / time(1) | {_x(f['scale_8_over_1'])} | <= 1.5 | "
        f"{parse.verdict(f['scale_8_over_1'], 1.5)} |",
        f"| Readiness detected after it happens (worst of {ready.get('trials')}) | "
        f"{_s(f['readiness_latency'], 2)} | <= 1 s | {parse.verdict(f['readiness_latency'], 1.0)} |",
        f"| Bytes re-downloaded into cache_hub on re-provision | "
        + (f"{f['reprovision_bytes']}" + ("" if reprov.get("rc") == 0 else
                                           f" (playbook exit {reprov.get('rc')})")
           if f["reprovision_bytes"] is not None
           else f"n/a ({reprov.get('skipped', 'not run')})")
        + " | 0 | " + ("met" if f["reprovision_bytes"] == 0 and reprov.get("rc") == 0
                       else "not measured" if f["reprovision_bytes"] is None
                       else "0 bytes, but the playbook failed" if f["reprovision_bytes"] == 0
                       else "NOT met") + " |",
        "",
        "## Cold converge, split per role",
        "",
        f"Fresh containers started in {_s(cold.get('containers'))} (not counted below); "
        f"site.yml took {_s(cold.get('wall'))} (exit {cold.get('rc')}), "
        f"{(cold.get('recap') or {}).get('changed')} changed tasks. Seconds are wall time: under "
        "the linear strategy a task lasts until its last host is done. The base play (`common`) "
        "runs under the free strategy, where each host's task is timed on its own and they overlap: "
        "a play's task times that add up to more than its wall time are scaled down to it.",
        "",
        "| Role | Seconds | Share |",
        "|---|---|---|",
    ]
    total = sum(cold.get("per_role", {}).values()) or 1.0
    lines += [f"| {role} | {sec:.1f} | {100 * sec / total:.0f}% |"
              for role, sec in cold.get("per_role", {}).items()]
    lines += ["", "Per tier (play):", "", "| Play | Seconds |", "|---|---|"]
    lines += [f"| {name} | {sec:.1f} |" for name, sec in cold.get("per_play", []) if sec >= 0.5]
    lines += ["", "Slowest tasks:", ""]
    lines += [f"- {sec:.1f} s {name}" for name, sec in cold.get("slowest", [])]
    lines += [
        "",
        "## The floor (no Ansible)",
        "",
        "bench/floor/*.sh, one per host kind, in fresh containers at once: the same Debian packages "
        "installed and services started (plus the Concourse archive unpacked when given) with "
        "apt-get and systemctl. Nothing configured; a measurement floor, not an installer.",
        "",
        f"Wall {_s(floor.get('wall'))} (exit {floor.get('rc')}); per host: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in floor.get("per_host", {}).items()),
        "",
        "## No-change run and Ansible's levers",
        "",
        f"Second run of site.yml: {_s(nochange.get('wall'))}, changed {nochange.get('changed')}"
        + (f" ({', '.join(nochange['changed_tasks'])})" if nochange.get("changed_tasks") else "")
        + (f"; run again after the levers: {_s(levers['nochange_2']['wall'])}, changed "
           f"{levers['nochange_2']['changed']}" if (levers.get("nochange_2") or {}).get("rc") == 0
           else "") + ".",
        "",
    ]
    if levers.get("levers"):
        second = levers.get("nochange_2") or {}
        lines += [("Each lever against the mean of the two plain no-change runs "
                   if second.get("rc") == 0 else "Each lever against the plain no-change run ")
                  + f"({_s(levers.get('baseline_mean'))}); gain = time off / time on.", "",
                  "| Lever | Variant run | On | Off | Gain |", "|---|---|---|---|---|"]
        for lever in levers["levers"]:
            if not lever["variant_ok"]:
                # A run that failed or was stopped measured nothing.
                lines.append(f"| {lever['lever']} | `{lever['variant']}` | not measured (the run "
                             "failed or was stopped) | | |")
                continue
            lines.append(f"| {lever['lever']} | `{lever['variant']}` | {_s(lever['on'])} | "
                         f"{_s(lever['off'])} | {_x(lever['gain'])} |")
    else:
        lines.append("Levers not measured (BENCH_QUICK).")
    trips = results.get("roundtrips") or {}
    lines += ["", "Fewer round trips (bench/playbooks/roundtrips.yml, on the converged lab: "
              "common's base packages, all present, asked for in one apt task and then one "
              "apt run per package, on the web node and the workers at once): "]
    if trips.get("rc") == 0 and trips.get("one_task") is not None:
        lines[-1] += (f"one task {_s(trips['one_task'])}, {trips['packages']} runs "
                      f"{_s(trips['per_package'])}: gain {_x(trips['gain'])}, changed {trips['changed']}.")
    else:
        lines[-1] += ("not measured" + (f" (exit {trips['rc']})" if trips else "") + ".")
    lines += ["", "## Scaling: fresh workers converged at once", "",
              "`playbooks/common.yml` and `playbooks/workers.yml` against N fresh Debian 12 worker "
              "containers (`--limit scale-*`), the web node's facts from the fact cache.", "",
              "| Workers | Containers start | Converge | Ratio to 1 | Exit |", "|---|---|---|---|---|"]
    one = scaling.get(1, {}).get("wall")
    for size, row in sorted(scaling.items()):
        lines.append(f"| {size} | {_s(row['containers'])} | {_s(row['wall'])} | "
                     f"{_x(parse.ratio(row['wall'], one))} | {row['rc']} |")
    lines += ["", "## Re-provisioning one worker", ""]
    if reprov.get("skipped"):
        lines.append(f"SKIPPED: {reprov['skipped']}")
    elif not reprov:
        lines.append("Not measured in this run.")
    else:
        lines += [
            "gpu-worker-1's container is removed (a wiped root disk) and made again with its cache_hub "
            "volume, then `playbooks/reprovision-worker.yml --limit gpu-worker-1` runs. Before it, the "
            "bench put 64 MiB of random bytes into cache_hub as a stand-in for downloaded weights.",
            "",
            f"Wall {_s(reprov.get('wall'))} (container {_s(reprov.get('recreate'))}, playbook "
            f"{_s(reprov.get('playbook'))}, exit {reprov.get('rc')}); cache_hub "
            f"{reprov.get('cache_files_before')} files / {reprov.get('cache_bytes_before')} bytes before, "
            f"{reprov.get('cache_files_after')} / {reprov.get('cache_bytes_after')} after; "
            f"bytes re-downloaded (files new, or with a new inode or mtime): {reprov.get('redownloaded_bytes')}.",
        ]
    lines += ["", "## Readiness", "",
              f"pipelines/indextts2/scripts/readiness.py against a stand-in HTTP server (bench/standin.py, "
              f"a test double, not the web UI) that turns ready {ready.get('ready_after')} s after start; "
              f"{ready.get('trials')} trials.", "",
              f"Detection latency: median {_s(ready.get('median'), 2)}, worst {_s(ready.get('max'), 2)} "
              f"(exit codes {ready.get('codes')}). A fixed `sleep {ready.get('fixed_sleep'):.0f}` "
              f"would have waited {_s(ready.get('fixed_sleep_latency'))} past the moment, and would "
              f"fail a web UI that needs longer than {ready.get('fixed_sleep'):.0f} s.",
              "", f"The whole bench took {results.get('bench_wall', 0) / 60:.1f} min.", ""]
    return "\n".join(lines)


def chart(results: dict, path: str) -> None:
    import matplotlib  # noqa: PLC0415 - installed for the bench only (bench/requirements.txt)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    m = results["machine"]
    cold = results.get("cold", {})
    scaling = {int(k): v for k, v in results.get("scaling", {}).items()}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    roles = list(cold.get("per_role", {}).items())[::-1]
    left.barh([r for r, _ in roles], [s for _, s in roles], color="#4c72b0")
    if results.get("floor", {}).get("wall"):
        left.axvline(results["floor"]["wall"], color="#c44e52", linestyle="--",
                     label=f"floor (no Ansible) {results['floor']['wall']:.0f} s")
        left.legend(loc="lower right", fontsize=8)
    left.set_xlabel("seconds (wall)")
    left.set_title(f"Cold converge per role: {cold.get('wall', 0):.0f} s in all", fontsize=10)
    sizes = sorted(scaling)
    right.bar([str(s) for s in sizes], [scaling[s]["wall"] for s in sizes], color="#55a868")
    right.set_xlabel("fresh workers converged at once")
    right.set_ylabel("seconds (wall)")
    right.set_title("Scaling: common + worker tier", fontsize=10)
    for index, size in enumerate(sizes):
        ratio = parse.ratio(scaling[size]["wall"], scaling[sizes[0]]["wall"])
        right.annotate(f"{ratio:.2f}x", (index, scaling[size]["wall"]), ha="center", va="bottom", fontsize=8)
    fig.suptitle(f"make bench, {m['date']}, {m['cpus']} CPUs, {m['memory_gib']} GiB, "
                 f"load {m['loadavg'][0]:.1f} at start", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write(results: dict, bench_dir: str) -> None:
    with open(os.path.join(bench_dir, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=1)
    with open(os.path.join(bench_dir, "results.md"), "w", encoding="utf-8") as handle:
        handle.write(markdown(results))
    chart(results, os.path.join(bench_dir, "results.png"))


if __name__ == "__main__":
    import sys
    with open(sys.argv[1], encoding="utf-8") as source:
        write(json.load(source), os.path.dirname(os.path.abspath(__file__)))
