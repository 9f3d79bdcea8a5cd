#!/usr/bin/env bash
# kproxy-diff.sh: in a pipeline, show what a change to Kubernetes manifests does to a node's
# proxy rules, and optionally fail the pipeline on a policy.
#
#   deploy/ci/kproxy-diff.sh [--base REF] [--manifests DIR] [--fail-on-lost-endpoints]
#                            [--fail-on-change] [--report FILE] [-- extra kproxy diff flags]
#
# It checks out DIR as it is at the merge base of REF and HEAD into a temporary folder, runs
#   kproxy diff --from <base>/DIR --to DIR -o markdown [--fail-on lost-endpoints]
# prints the Markdown report (and appends it to $GITHUB_STEP_SUMMARY when set), and exits:
#   0  no change, or changes that no policy forbids
#   2  error (bad manifests, bad arguments, git trouble)
#   3  a policy failed: --fail-on-lost-endpoints and a Service that had endpoints has none left
#      (its traffic would be rejected), or --fail-on-change and anything changed
#
# Environment:
#   KPROXY         the kproxy command (default: kproxy on PATH); words are split, so
#                  KPROXY="deno run -A /src/kproxy/src/cli/main.ts" works
#   KPROXY_BASE    default for --base (else origin/$GITHUB_BASE_REF, else origin/main)
#   KPROXY_NODE    node name the rules are rendered for (--hostname-override; default ci-node)
set -euo pipefail

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

die() {
  echo "kproxy-diff: $*" >&2
  exit 2
}

base="${KPROXY_BASE:-}"
if [ -z "$base" ]; then
  if [ -n "${GITHUB_BASE_REF:-}" ]; then base="origin/$GITHUB_BASE_REF"; else base="origin/main"; fi
fi
manifests="."
fail_lost=false
fail_change=false
report=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base="${2:?--base needs a git ref}"; shift 2 ;;
    --base=*) base="${1#--base=}"; shift ;;
    --manifests) manifests="${2:?--manifests needs a folder}"; shift 2 ;;
    --manifests=*) manifests="${1#--manifests=}"; shift ;;
    --report) report="${2:?--report needs a file}"; shift 2 ;;
    --report=*) report="${1#--report=}"; shift ;;
    --fail-on-lost-endpoints) fail_lost=true; shift ;;
    --fail-on-change) fail_change=true; shift ;;
    -h | --help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

read -r -a kproxy <<<"${KPROXY:-kproxy}"
command -v "${kproxy[0]}" >/dev/null || die "cannot find ${kproxy[0]}; install kproxy or set KPROXY"

top="$(git rev-parse --show-toplevel 2>/dev/null)" || die "not inside a git work tree"
# The manifests folder, relative to the top of the repository.
abs="$(cd "$manifests" 2>/dev/null && pwd -P)" || die "manifests folder $manifests does not exist"
top="$(cd "$top" && pwd -P)"
case "$abs/" in
  "$top"/*) rel="${abs#"$top"}"; rel="${rel#/}" ;;
  *) die "manifests folder $manifests is outside the repository $top" ;;
esac

git rev-parse --verify --quiet "$base^{commit}" >/dev/null ||
  die "base $base is not a commit here (fetch it first, e.g. actions/checkout with fetch-depth: 0)"
merge_base="$(git merge-base "$base" HEAD)" || die "no merge base between $base and HEAD"

work="$(mktemp -d "${TMPDIR:-/tmp}/kproxy-diff.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/base/${rel:-.}"
# The base side: the folder as the merge base had it (empty if it did not exist yet).
if git cat-file -e "$merge_base:${rel:-.}" 2>/dev/null; then
  git -C "$top" archive --format=tar "$merge_base" -- "${rel:-.}" | tar -x -C "$work/base"
fi

args=(diff --from "$work/base/${rel:-.}" --to "$abs" -o markdown
  --hostname-override "${KPROXY_NODE:-ci-node}")
if $fail_lost; then args+=(--fail-on lost-endpoints); fi
args+=("${extra[@]}")

set +e
"${kproxy[@]}" "${args[@]}" >"$work/report.md" 2>"$work/stderr"
code=$?
set -e

{
  echo "<!-- kproxy diff ${merge_base:0:12}..HEAD ${rel:-.} -->"
  cat "$work/report.md"
} >"$work/full.md"
cat "$work/full.md"
cat "$work/stderr" >&2
if [ -n "$report" ]; then cp "$work/full.md" "$report"; fi
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$work/full.md" >>"$GITHUB_STEP_SUMMARY"; fi

case "$code" in
  0) exit 0 ;;
  1) if $fail_change; then
       echo "kproxy-diff: policy change failed: the manifests change the node's proxy rules" >&2
       exit 3
     fi
     exit 0 ;;
  3) exit 3 ;;
  *) die "kproxy diff failed with exit code $code" ;;
esac
