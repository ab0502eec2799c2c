#!/usr/bin/env python3
"""Renders the audit-vs-peers run as Markdown (called by bench/audit-vs-peers.sh).

Arguments: checks TSV (exit code, peak RSS, workloads seen per case), counts.json of the corpus,
then the hyperfine JSON exports (fast and slow commands). Machine and version facts come from BENCH_* environment variables.
"""

import csv
import json
import os
import sys

GOAL_SPEEDUP = 10.0
GOAL_ONE_CORE = 20_000
GOAL_SCALING = 1.7

checks_tsv, counts_json, *hyperfine_jsons = sys.argv[1:]
env = os.environ.get
workloads = int(env("BENCH_WORKLOADS", "10000"))
counts = json.load(open(counts_json))
timing = {}
runs_of = {}
for path in hyperfine_jsons:
    for r in json.load(open(path))["results"]:
        timing[r["command"]] = r
        runs_of[r["command"]] = len(r["times"])
checks = {row["slug"]: row for row in csv.DictReader(open(checks_tsv), delimiter="\t")}


def timed_out(slug):
    c = checks.get(slug)
    return c is not None and c["exit"] == "timeout"


def median(slug):
    r = timing.get(slug)
    return None if r is None else r["median"]


def time_or_bound(slug):
    """The median, or for a killed command its time limit (a lower bound)."""
    return float(checks[slug]["wall_s"]) if timed_out(slug) else median(slug)


def valid(slug):
    c = checks.get(slug)
    return c is not None and int(c["workloads_seen"] or 0) == workloads


def cpu(slug):
    r = timing.get(slug)
    return None if r is None else r["user"] + r["system"]


def rss_mib(slug):
    c = checks.get(slug)
    return None if c is None or not c["max_rss_kib"] else int(c["max_rss_kib"]) / 1024


def fmt_time(slug):
    if timed_out(slug):
        return f"> {float(checks[slug]['wall_s']):.0f} s (killed)"
    return fmt_s(median(slug))


def fmt_s(v):
    return "—" if v is None else (f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s")


def fmt_mib(v):
    return "—" if v is None else f"{v:.0f} MiB"


def fmt_rate(v):
    return "—" if v is None else f"{v:,.0f}"


tools = ["prodready", "prodready-1core", "kube-score", "polaris", "kube-linter", "kube-linter-1core"]
label = {"prodready-1core": "prodready (1 core, `taskset -c 0`)",
         "kube-linter-1core": "kube-linter (1 core, `taskset -c 0`)"}
base = {layout: median(f"prodready-{layout}") for layout in ("file", "dir")}
# A tool pinned to one core is compared with prodready pinned to one core.
base_1core = {layout: median(f"prodready-1core-{layout}") for layout in ("file", "dir")}

out = []
w = out.append
w("## 1. Audit throughput vs peers")
w("")
w(f"Run finished {env('BENCH_DATE')}; {workloads:,} workloads (seed {env('BENCH_SEED')}), "
  f"{counts['documents']:,} documents ({', '.join(f'{v:,} {k}' for k, v in counts['byKind'].items())}), "
  f"{counts['bytes'] / 1e6:.1f} MB, {counts['namespaces']} namespaces; the directory layout is "
  f"{counts['files']:,} files (one per workload with its companions).")
w("")
w("**Machine:** " + f"{env('BENCH_NPROC')} CPUs ({env('BENCH_CPU')}), "
  f"{int(env('BENCH_MEM_KIB', '0')) / 1024 / 1024:.1f} GiB RAM, Linux {env('BENCH_KERNEL')}; "
  f"load average {env('BENCH_LOAD_BEFORE')} before the run, {env('BENCH_LOAD_AFTER')} after "
  "(a shared development machine: other builds ran at the same time).")
w("")
w("**Versions:**")
w(f"- prodready: {env('BENCH_PRODREADY')}, {env('BENCH_RUSTC')}")
w(f"- kube-score: {env('BENCH_KUBE_SCORE')}")
w(f"- Polaris: {env('BENCH_POLARIS')}")
w(f"- kube-linter: {env('BENCH_KUBE_LINTER')}")
w(f"- peers built with {env('BENCH_GO')}, `CGO_ENABLED=0`, by `bench/peers.sh` (pins in `bench/versions.env`)")
w(f"- {env('BENCH_HYPERFINE')}")
missing = (env("BENCH_MISSING") or "").split()
if missing:
    w(f"- **not installed:** {', '.join(missing)} (see `bench/peers.sh` output)")
w("")
w("**Command:** `bench/audit-vs-peers.sh` (`WORKLOADS=" + str(workloads) + f" SEED={env('BENCH_SEED')} "
  f"RUNS={env('BENCH_RUNS')} WARMUP={env('BENCH_WARMUP')} SLOW_SECONDS={env('BENCH_SLOW_SECONDS')} "
  f"SLOW_RUNS={env('BENCH_SLOW_RUNS')}`). It runs each command below once under `/usr/bin/time -v` "
  "(peak RSS, exit code, output kept for the count), then times them with hyperfine "
  "(`--ignore-failure`, stdout discarded), in the corpus directory: commands whose checked run "
  f"took under {env('BENCH_SLOW_SECONDS')} s with `--warmup {env('BENCH_WARMUP')} --runs {env('BENCH_RUNS')}`, "
  f"the slower ones (minutes per run; the checked run was their warm-up) with `--runs {env('BENCH_SLOW_RUNS')}`.")
w("")
w("| case | command | timed runs | exit | workloads reported | output |")
w("| --- | --- | ---: | ---: | ---: | ---: |")
for slug, c in checks.items():
    w(f"| {slug} | `{c['cmd']}` | {runs_of.get(slug, '—')} | {c['exit']} | {int(c['workloads_seen'] or 0):,}"
      f"{'' if valid(slug) else ' **(not all: excluded)**'} | {int(c['findings_bytes']) / 1e6:.1f} MB |")
w("")
w("Peak RSS is from one separate run of each command under `/usr/bin/time -v`. \"workloads "
  "reported\" counts the Deployments, StatefulSets and CronJobs in each tool's output (kube-score: "
  "object headers; Polaris: `Results`; kube-linter: distinct objects among its reports; prodready: "
  "`summary.workloads`), so a tool that fails fast cannot pass as fast.")
w("")
w("| tool | median, one file | median, directory | workloads/s (file) | workloads/s (dir) "
  "| peak RSS (file) | peak RSS (dir) | peer time / prodready time (file) | (dir) "
  "| CPU time, user+sys (file / dir) |")
w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for t in tools:
    f, d = f"{t}-file", f"{t}-dir"
    if f not in checks and d not in checks:
        w(f"| {label.get(t, t)} | not installed | | | | | | | | |")
        continue
    mf, md = median(f), median(d)
    b = base_1core if t.endswith("-1core") else base
    rate = lambda m, s: (workloads / m) if (m and valid(s)) else None

    def ratio(m, b, s):
        if timed_out(s) and b:
            return f"> {time_or_bound(s) / b:.0f}×"
        return f"{m / b:.1f}×" if (m and b and valid(s)) else "—"

    w(f"| {label.get(t, t)} | {fmt_time(f)} | {fmt_time(d)} | {fmt_rate(rate(mf, f))} | {fmt_rate(rate(md, d))} "
      f"| {('≥ ' if timed_out(f) else '') + fmt_mib(rss_mib(f))} | {('≥ ' if timed_out(d) else '') + fmt_mib(rss_mib(d))} "
      f"| {ratio(mf, b['file'], f)} | {ratio(md, b['dir'], d)} "
      f"| {fmt_s(cpu(f))} / {fmt_s(cpu(d))} |")
w("")
w("### Goals")
w("")
for t in ("kube-score", "polaris", "kube-linter"):
    f, d = f"{t}-file", f"{t}-dir"
    if f not in checks:
        w(f"- **{t}:** not measured (not installed).")
        continue
    if timed_out(f) or timed_out(d):
        b = [f"{time_or_bound(x) / base[l]:.0f}×" for x, l in ((f, "file"), (d, "dir"))]
        w(f"- **{t}:** killed after {env('BENCH_CMD_TIMEOUT')} s on "
          f"{' and '.join(l for x, l in ((f, 'the single file'), (d, 'the directory')) if timed_out(x))}; "
          f"prodready is at least {b[0]} (file) and {b[1]} (dir) faster — goal ≥ {GOAL_SPEEDUP:.0f}×: met. "
          f"Peak RSS {fmt_mib(rss_mib('prodready-file'))} vs ≥ {fmt_mib(rss_mib(f))} when it was killed — goal lower: "
          f"{'met' if rss_mib('prodready-file') < rss_mib(f) else 'MISSED'}.")
        continue
    if not (valid(f) and valid(d)):
        w(f"- **{t}:** its output did not cover every workload; its times are not comparable.")
        continue
    rf, rd = median(f) / base["file"], median(d) / base["dir"]
    speed = "met" if min(rf, rd) >= GOAL_SPEEDUP else f"MISSED (by {GOAL_SPEEDUP / min(rf, rd):.1f}× on the worse layout)"
    pm, pf, pdr = rss_mib("prodready-file"), rss_mib(f), rss_mib(d)
    pmd = rss_mib("prodready-dir")
    mem_ok = pm is not None and pf is not None and pm < pf and pmd < pdr
    mem = "met" if mem_ok else "MISSED"
    cf, cd = cpu(f) / cpu("prodready-file"), cpu(d) / cpu("prodready-dir")
    w(f"- **{t}:** prodready is {rf:.1f}× faster on the single file and {rd:.1f}× on the directory "
      f"(by CPU time: {cf:.1f}× and {cd:.1f}×) — goal ≥ {GOAL_SPEEDUP:.0f}× (wall time): {speed}. Peak RSS {fmt_mib(pm)} / {fmt_mib(pmd)} (file / dir) vs "
      f"{fmt_mib(pf)} / {fmt_mib(pdr)} — goal lower: {mem}.")
def verdict_of(value, goal):
    """`met`, or by how much a figure that must reach `goal` fell short."""
    return "met" if value >= goal else f"MISSED by {goal / value:.2f}×"


kl1, p1 = median("kube-linter-1core-dir"), median("prodready-1core-dir")
if kl1 and p1 and valid("kube-linter-1core-dir") and valid("prodready-1core-dir"):
    r1 = kl1 / p1
    w(f"- **kube-linter, both tools pinned to one core (issue 18):** {fmt_s(p1)} vs {fmt_s(kl1)} on the "
      f"directory, {r1:.1f}× (by CPU time: {cpu('kube-linter-1core-dir') / cpu('prodready-1core-dir'):.1f}×) "
      f"— goal ≥ {GOAL_SPEEDUP:.0f}×: {verdict_of(r1, GOAL_SPEEDUP)}.")
two = median("prodready-dir")
if two and p1:
    s2 = p1 / two
    w(f"- **`audit --jobs` scaling (issue 18):** the directory in {fmt_s(p1)} on one core and "
      f"{fmt_s(two)} on {env('BENCH_NPROC')} cores (`--jobs` defaults to the cores it may use), "
      f"{s2:.2f}× — goal ≥ {GOAL_SCALING}× with 2 cores: {verdict_of(s2, GOAL_SCALING)}.")
one = median("prodready-1core-file")
if one:
    rate = workloads / one
    verdict = verdict_of(rate, GOAL_ONE_CORE)
    cpu_rate = workloads / cpu("prodready-1core-file")
    w(f"- **One core (issue 2):** {rate:,.0f} workloads/s end to end on the single file, YAML "
      f"parsing and JSON report included ({cpu_rate:,.0f}/s counting CPU time only, which removes "
      f"the wait for the core other processes held) — goal ≥ {GOAL_ONE_CORE:,}/s: {verdict}.")
w("")
print("\n".join(out))
