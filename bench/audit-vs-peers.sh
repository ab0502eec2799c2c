#!/usr/bin/env bash
# Issue 7, scenario 1: audit throughput vs peers.
#
# Builds prodready (release), installs the peers (bench/peers.sh), generates the corpus
# (10,000 workloads, seed 42) as one multi-document file and as a directory of files, then:
#   1. runs every command once under GNU time: peak RSS, exit code, wall time, and a count of
#      the workloads the tool actually reported on (a tool that fails fast must not look fast);
#   2. times the commands with hyperfine (medians): those whose checked run took under
#      SLOW_SECONDS with --warmup WARMUP --runs RUNS, the slower ones (they take minutes each;
#      the checked run served as their warm-up) with --runs SLOW_RUNS; prodready also pinned to
#      one core (taskset -c 0) for the "≥ 20,000 workloads/s on one core" figure and for the
#      scaling of `audit --jobs` (its default is the cores it may use), kube-linter on the
#      directory also pinned to one core (both tools on one core, issue 18); a command
#      whose checked run is still going after CMD_TIMEOUT seconds is killed and reported as
#      "more than CMD_TIMEOUT" (a lower bound on its time), not timed again;
#   3. writes a Markdown section with the machine, versions, commands and the table.
#
# Usage: bench/audit-vs-peers.sh [--update-results]
#   --update-results   also replace the audit section of bench/RESULTS.md with this run's
# Environment: WORKLOADS (10000), SEED (42), RUNS (5), WARMUP (1), SLOW_SECONDS (60),
#              SLOW_RUNS (3), CMD_TIMEOUT (900), BENCH_OUT (target/bench/audit-vs-peers: corpus, outputs, JSON).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
WORKLOADS="${WORKLOADS:-10000}"
SEED="${SEED:-42}"
RUNS="${RUNS:-5}"
WARMUP="${WARMUP:-1}"
SLOW_SECONDS="${SLOW_SECONDS:-60}"
SLOW_RUNS="${SLOW_RUNS:-3}"
CMD_TIMEOUT="${CMD_TIMEOUT:-900}"
out="${BENCH_OUT:-$root/target/bench/audit-vs-peers}"
update_results=0
[[ "${1:-}" == "--update-results" ]] && update_results=1

log() { echo "audit-vs-peers: $*" >&2; }

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- build -------------------------------------------------------------------------------------
log "building prodready and gen-corpus (release)"
cargo build --release --locked -p prodready -p bench --bin prodready --bin gen-corpus
release="$root/target/release"

# --- peers -------------------------------------------------------------------------------------
bash "$root/bench/peers.sh" >/dev/null || log "some peers are not installed; benchmarking the rest"
declare -A peer=()
while IFS='=' read -r name path; do
    peer[$name]="$path"
done < <(bash "$root/bench/peers.sh" --print)
bindir="$out/bin"
rm -rf "$bindir"
mkdir -p "$bindir"
ln -s "$release/prodready" "$bindir/prodready"
for name in "${!peer[@]}"; do
    ln -s "${peer[$name]}" "$bindir/$name"
done
export PATH="$bindir:$PATH"
command -v hyperfine >/dev/null || { log "hyperfine is missing (bench/peers.sh installs it)"; exit 1; }

# --- corpus ------------------------------------------------------------------------------------
log "generating $WORKLOADS workloads (seed $SEED)"
"$release/gen-corpus" --workloads "$WORKLOADS" --seed "$SEED" --out "$out/corpus" >/dev/null
cd "$out/corpus"

# Each case: slug | tool | layout | command (run by the shell in $out/corpus).
cases=(
    "prodready-file|prodready|file|prodready audit corpus.yaml -o json --fail-on none"
    "prodready-dir|prodready|dir|prodready audit files -o json --fail-on none"
    "prodready-1core-file|prodready (1 core)|file|taskset -c 0 prodready audit corpus.yaml -o json --fail-on none"
    "prodready-1core-dir|prodready (1 core)|dir|taskset -c 0 prodready audit files -o json --fail-on none"
)
[[ -n "${peer[kube-score]:-}" ]] && cases+=(
    "kube-score-file|kube-score|file|kube-score score corpus.yaml"
    "kube-score-dir|kube-score|dir|kube-score score files/*/*.yaml"
)
[[ -n "${peer[polaris]:-}" ]] && cases+=(
    "polaris-file|polaris|file|polaris audit --audit-path corpus.yaml --format json"
    "polaris-dir|polaris|dir|polaris audit --audit-path files --format json"
)
# kube-linter silently skips any file over 10 MiB (maxFileSizeBytes in its
# pkg/lintcontext/parse_yaml.go: "no valid objects found", exit 0): the 10,000-workload file is
# 13.8 MB, so it reads the single file from stdin, which has no such limit. The path form is
# kept as a case to show the sanity check at work.
[[ -n "${peer[kube-linter]:-}" ]] && cases+=(
    "kube-linter-file|kube-linter|file|kube-linter lint - --format json < corpus.yaml"
    "kube-linter-dir|kube-linter|dir|kube-linter lint files --format json"
    "kube-linter-path-file|kube-linter|file|kube-linter lint corpus.yaml --format json"
    "kube-linter-1core-dir|kube-linter (1 core)|dir|taskset -c 0 kube-linter lint files --format json"
)

# Workloads a tool reported on, read from its output.
count_workloads() {
    local tool=$1 f=$2
    case "$tool" in
        prodready*) jq '.summary.workloads' "$f" ;;
        # Human output: one header line per object, e.g. "apps/v1/Deployment web-00000 in team-000".
        kube-score) grep -cE '^(apps/v1/(Deployment|StatefulSet)|batch/v1/CronJob) ' "$f" || true ;;
        polaris) jq '[.Results[] | select(.Kind == "Deployment" or .Kind == "StatefulSet" or .Kind == "CronJob")] | length' "$f" ;;
        # kube-linter lists only objects with findings: distinct workloads among its reports.
        kube-linter*) jq '[.Reports[].Object.K8sObject | select(.GroupVersionKind.Kind | test("^(Deployment|StatefulSet|CronJob)$")) | "\(.Namespace)/\(.Name)"] | unique | length' "$f" ;;
    esac
}

# --- one checked run per case: exit code, peak RSS, workloads seen -----------------------------
mkdir -p "$out/runs"
checks="$out/checks.tsv"
printf 'slug\ttool\tlayout\texit\tmax_rss_kib\tworkloads_seen\tfindings_bytes\twall_s\tcmd\n' >"$checks"
fast=()
slow=()
for c in "${cases[@]}"; do
    IFS='|' read -r slug tool layout cmd <<<"$c"
    log "checked run: $cmd"
    set +e
    # SIGTERM (then SIGKILL 10 s later): timeout survives its own TERM and reaps the command,
    # so GNU time still sees the command's peak RSS. (With -s KILL, timeout kills itself too.)
    /usr/bin/time -v -o "$out/runs/$slug.time" timeout -k 10 "$CMD_TIMEOUT" bash -c "$cmd" \
        >"$out/runs/$slug.out" 2>"$out/runs/$slug.err"
    code=$?
    set -e
    rss="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out/runs/$slug.time")"
    wall="$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s}' "$out/runs/$slug.time")"
    if [[ $code == 124 || $code == 137 ]]; then
        log "  killed after $CMD_TIMEOUT s; reported as a lower bound"
        code=timeout
    elif awk -v w="$wall" -v l="$SLOW_SECONDS" 'BEGIN { exit !(w >= l) }'; then
        slow+=("$c")
    else
        fast+=("$c")
    fi
    seen="$(count_workloads "$tool" "$out/runs/$slug.out" 2>/dev/null || echo 0)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$slug" "$tool" "$layout" "$code" "$rss" "${seen:-0}" \
        "$(stat -c %s "$out/runs/$slug.out")" "$wall" "$cmd" >>"$checks"
done

# --- timing ------------------------------------------------------------------------------------
# time_cases NAME WARMUP RUNS CASE...: one hyperfine run over the cases.
time_cases() {
    local name=$1 warmup=$2 runs=$3
    shift 3
    (($#)) || return 0
    local args=() c slug tool layout cmd
    for c in "$@"; do
        IFS='|' read -r slug tool layout cmd <<<"$c"
        args+=(-n "$slug" "$cmd")
    done
    log "timing $# commands: --warmup $warmup --runs $runs"
    hyperfine --warmup "$warmup" --runs "$runs" --ignore-failure --style basic \
        --export-json "$out/hyperfine-$name.json" --export-markdown "$out/hyperfine-$name.md" "${args[@]}" \
        >"$out/hyperfine-$name.log" 2>&1 || { cat "$out/hyperfine-$name.log" >&2; exit 1; }
}
rm -f "$out"/hyperfine-*.json
time_cases fast "$WARMUP" "$RUNS" "${fast[@]}"
time_cases slow 0 "$SLOW_RUNS" "${slow[@]}"

load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- report ------------------------------------------------------------------------------------
cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
mem_kib="$(awk '/^MemTotal/ {print $2}' /proc/meminfo)"
source "$root/bench/versions.env"
commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
dirty="$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | head -c1)"
export BENCH_CPU="$cpu" BENCH_MEM_KIB="$mem_kib" BENCH_NPROC="$(nproc)" BENCH_KERNEL="$(uname -r)" \
    BENCH_LOAD_BEFORE="$load_before" BENCH_LOAD_AFTER="$load_after" \
    BENCH_PRODREADY="$(prodready --version 2>/dev/null | head -n1) (commit $commit${dirty:+, with uncommitted changes in the tree})" \
    BENCH_KUBE_SCORE="$KUBE_SCORE_MODULE $KUBE_SCORE_VERSION" \
    BENCH_POLARIS="$POLARIS_MODULE $POLARIS_VERSION" \
    BENCH_KUBE_LINTER="$KUBE_LINTER_MODULE $KUBE_LINTER_VERSION (built from $KUBE_LINTER_SOURCE)" \
    BENCH_GO="$(go version 2>/dev/null || echo 'go: not installed')" \
    BENCH_HYPERFINE="$(hyperfine --version)" BENCH_RUSTC="$(rustc --version)" \
    BENCH_WORKLOADS="$WORKLOADS" BENCH_SEED="$SEED" BENCH_RUNS="$RUNS" BENCH_WARMUP="$WARMUP" \
    BENCH_SLOW_SECONDS="$SLOW_SECONDS" BENCH_SLOW_RUNS="$SLOW_RUNS" BENCH_CMD_TIMEOUT="$CMD_TIMEOUT" \
    BENCH_DATE="$(date -u +%Y-%m-%dT%H:%MZ)" BENCH_OUT="$out" \
    BENCH_MISSING="$(for n in kube-score polaris kube-linter; do [[ -n "${peer[$n]:-}" ]] || printf '%s ' "$n"; done)"
python3 "$root/bench/report.py" "$checks" "$out/corpus/counts.json" "$out"/hyperfine-*.json >"$out/audit-vs-peers.md"
log "report: $out/audit-vs-peers.md"

if [[ $update_results == 1 ]]; then
    python3 - "$root/bench/RESULTS.md" "$out/audit-vs-peers.md" <<'EOF'
import sys, pathlib
results, section = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]).read_text()
begin, end = "<!-- audit-vs-peers:begin -->", "<!-- audit-vs-peers:end -->"
block = f"{begin}\n{section.rstrip()}\n{end}"
text = results.read_text() if results.exists() else "# Benchmark results\n\n"
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    text = head + block + rest.split(end, 1)[1]
else:
    text = text.rstrip() + "\n\n" + block + "\n"
results.write_text(text)
EOF
    log "updated bench/RESULTS.md"
fi
cat "$out/audit-vs-peers.md"
