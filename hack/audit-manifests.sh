#!/usr/bin/env bash
# `prodready audit` over the Kubernetes manifests among PATHs: the entry of the pre-commit
# hook (.pre-commit-hooks.yaml) and the audit step of the CI action (action.yml).
#
#   hack/audit-manifests.sh [AUDIT OPTIONS] PATH...
#
# Directories are walked for *.yaml, *.yml and *.json. A file is audited when it holds a
# Kubernetes object (a top-level `kind:`, or a JSON "kind" key); other YAML and JSON (CI
# configs, Helm values, editor settings) and Helm chart templates (`*/templates/*`, not YAML
# before `helm template`: audit `helm template … | prodready audit -` instead) are skipped,
# where `prodready audit` would report them as input errors (exit 2). No manifest at all: a
# note on stderr, exit 0. Otherwise the exit code is prodready's.
set -euo pipefail

opts=()
paths=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --policy|--profile|-o|--output|--fail-on|--color|--now) opts+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    -*) opts+=("$1"); shift ;;
    *) paths+=("$1"); shift ;;
  esac
done

is_manifest() {
  case "$1" in
    */templates/*) return 1 ;;
    *.json) grep -qE '"kind"[[:space:]]*:' -- "$1" ;;
    *) grep -qE '^kind:[[:space:]]*[A-Za-z]' -- "$1" ;;
  esac
}

files=()
for p in "${paths[@]}"; do
  if [[ -d "$p" ]]; then
    while IFS= read -r -d '' f; do
      if is_manifest "$f"; then files+=("$f"); fi
    done < <(find "$p" -type d -name .git -prune -o -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) -print0 | sort -z)
  elif [[ -f "$p" ]]; then
    if is_manifest "$p"; then files+=("$p"); fi
  else
    echo "audit-manifests: no such file or directory: $p" >&2
    exit 2
  fi
done

if [[ ${#files[@]} -eq 0 ]]; then
  echo "audit-manifests: no Kubernetes manifests in ${paths[*]:-(nothing given)}; nothing to audit" >&2
  exit 0
fi
exec prodready audit "${opts[@]}" "${files[@]}"
