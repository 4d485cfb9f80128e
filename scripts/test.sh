#!/usr/bin/env bash
# Run the glexec-py test suite as root on Debian 12: installs what the tests need (Debian
# packages, the product environment /opt/glexec-py, a test environment /opt/glexec-py-test),
# then runs pytest with --require-all, so a missing prerequisite fails instead of skipping.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -k config).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "test.sh: the suite runs as root (it creates accounts and switches uids)" >&2; exit 1; }
umask 022
"$here/scripts/install-system-packages.sh"
"$here/scripts/install-glexec-py.sh" --no-launcher
# The tests run from their own environment (pytest, hypothesis), built from the same checkout.
"$here/scripts/install-glexec-py.sh" --prefix /opt/glexec-py-test --no-launcher --extras test
venv=/opt/glexec-py-test
cd "$here"
set +e
"$venv/bin/pytest" --require-all "$@"
status=$?
set -e
# pytest exits 5 when nothing was collected: that is a failure here, never a pass.
exit $status
