#!/usr/bin/env bash
# Scenario 5 of issue 7: the admission webhook under load. Drives benches/webhook_load.rs (the
# real HTTPS server in-process, keep-alive HTTPS clients, a realistic ~8.5 KB Deployment
# AdmissionReview, baseline + strict policies) at a fixed rate and at saturation, and writes the
# figures into bench/RESULTS.md between the `webhook-load` markers with --update-results.
#
#   bench/webhook-load.sh [--update-results]     # RATE=200 DURATION=60 CONNECTIONS=8
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-200}
DURATION=${DURATION:-60}
CONNECTIONS=${CONNECTIONS:-8}
UPDATE=0
[[ "${1:-}" == "--update-results" ]] && UPDATE=1

out_dir=${BENCH_OUT:-target/bench/webhook-load}
mkdir -p "$out_dir"
out="$out_dir/output.txt"
cmd="cargo bench --locked --bench webhook_load -- --rate $RATE --duration $DURATION --connections $CONNECTIONS"

cargo bench --locked --bench webhook_load --no-run >/dev/null 2>&1 || cargo bench --locked --bench webhook_load --no-run
started=$(date -u +%FT%H:%MZ)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# CPU time of the whole process (server + client share it) from GNU time.
/usr/bin/time -f 'cpu %U %S wall %e maxrss %M' -o "$out_dir/time.txt" \
  $cmd | tee "$out"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
finished=$(date -u +%FT%H:%MZ)

python3 - "$out" "$out_dir/time.txt" "$started" "$finished" "$load_before" "$load_after" "$cmd" "$UPDATE" "$RATE" <<'PY'
import re, subprocess, sys, pathlib
out, timef, started, finished, lb, la, cmd, update, rate = sys.argv[1:]
text = pathlib.Path(out).read_text()
t = pathlib.Path(timef).read_text().split()
user, sys_, wall = float(t[1]), float(t[2]), float(t[4])
def sh(*a):
    try: return subprocess.run(a, capture_output=True, text=True).stdout.strip()
    except OSError: return "?"
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0) / 1048576
cpus = sh("nproc")
commit = sh("git", "rev-parse", "--short", "HEAD")
dirty = ", with uncommitted changes" if sh("git", "status", "--porcelain", "--untracked-files=no") else ""
row_re = re.compile(r"^(?P<title>[^:]+): (?P<n>\d+) ok, (?P<err>\d+) errors in (?P<secs>[\d.]+)s = (?P<rps>\d+) reviews/s \| p50 (?P<p50>\d+) µs, p99 (?P<p99>\d+) µs, p99.9 (?P<p999>\d+) µs, max (?P<max>\d+) µs")
rows, res = [], {}
for line in text.splitlines():
    m = row_re.match(line)
    if not m: continue
    d = m.groupdict()
    ms = lambda k: f"{int(d[k]) / 1000:.2f} ms"
    rows.append(f"| {d['title']} | {int(d['n']):,} | {int(d['rps']):,} | {ms('p50')} | {ms('p99')} | {ms('p99.9' if False else 'p999')} | {ms('max')} | {d['err']} |")
    if "from request write" in d["title"]: res["write"] = d
    elif "fixed rate" in d["title"]: res["sched"] = d
    elif "saturation" in d["title"]: res["sat"] = d
verdicts = []
if "write" in res:
    p99 = int(res["write"]["p99"]) / 1000
    verdicts.append(f"- **p99 ≤ 2 ms at {rate} req/s:** {p99:.2f} ms from the request write "
                    f"({int(res['sched']['p99'])/1000:.2f} ms from the scheduled instant) — "
                    + ("met." if p99 <= 2 else f"**MISSED** ({p99/2:.1f}× the goal)."))
if "sat" in res:
    rps = int(res["sat"]["rps"])
    verdicts.append(f"- **≥ 5,000 reviews/s at saturation:** {rps:,} — " + ("met." if rps >= 5000 else f"**MISSED** ({5000/rps:.2f}× short)."))
errors = sum(int(d["err"]) for d in res.values())
verdicts.append(f"- Errors: {errors}.")
section = f"""## 5. Webhook under load

**Run:** {started} to {finished}. **Machine:** {cpus} CPUs ({model}), {mem:.1f} GiB RAM, Linux {sh('uname', '-r')}; load average {lb} before, {la} after.

**Versions:** prodready commit {commit}{dirty}, {sh('rustc', '-V')}, release profile (`cargo bench`).

**Command:** `bench/webhook-load.sh` = `{cmd}`. The load client and the real webhook server (`admission::serve_on`: axum, rustls, certificate from files) run in one process on the same two cores; one ~8.5 KB AdmissionReview of a Deployment (two containers, managedFields, last-applied annotation), two Warn policies (baseline, strict) so every review evaluates up to 2 × 21 rules and returns warnings. Fixed rate: one request every 1/rate s over min(connections, 4) keep-alive connections, latency from the scheduled instant (no coordinated omission) and from the request write. Saturation: every connection back to back. The whole process used {user:.1f} s user + {sys_:.1f} s system CPU in {wall:.1f} s.

| run | reviews | reviews/s | p50 | p99 | p99.9 | max | errors |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(rows)}

{chr(10).join(verdicts)}
"""
print(section)
if update == "1":
    p = pathlib.Path("bench/RESULTS.md")
    s = p.read_text()
    b, e = "<!-- webhook-load:begin -->", "<!-- webhook-load:end -->"
    block = f"{b}\n{section.rstrip()}\n{e}"
    if b in s and e in s:
        s = s[:s.index(b)] + block + s[s.index(e) + len(e):]
    else:
        s = s.rstrip() + "\n\n" + block + "\n"
    p.write_text(s)
PY
