#!/usr/bin/env bash
# The one benchmark command (as root, after the README's set-up):  bash bench/run.sh [--runs N]
# Installs what the benchmark needs (Debian packages incl. liblcmaps-dev and gcc), builds the
# committed glexec-py (git HEAD; the working tree when this is no git checkout) into its own
# product environment /opt/glexec-py-bench (kept for the next run; the test suite's
# /opt/glexec-py is never touched), then runs bench/run.py with Debian's python3, which builds
# its own site, launchers and LCMAPS driver, prints the tables and removes everything it made.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "bench: run me as root" >&2; exit 1; }
"$here/scripts/install-system-packages.sh"
prefix=${GLEXEC_PY_BENCH_PREFIX:-/opt/glexec-py-bench}
src=$here
if git -C "$here" rev-parse --verify -q HEAD >/dev/null 2>&1; then
  src=$(mktemp -d)
  trap 'rm -rf "$src"' EXIT
  git -C "$here" archive HEAD | tar -C "$src" -xf -
  echo "bench: glexec-py at $(git -C "$here" rev-parse --short HEAD) into $prefix" >&2
fi
"$src/scripts/install-glexec-py.sh" --prefix "$prefix" --no-launcher >/dev/null
GLEXEC_PY_BENCH_PREFIX=$prefix /usr/bin/python3 -I "$here/bench/run.py" --prefix "$prefix" "$@"
