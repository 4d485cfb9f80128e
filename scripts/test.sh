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
venv=/opt/glexec-py-test
if [ ! -x "$venv/bin/pytest" ]; then
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip setuptools wheel
fi
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
tar -C "$here" --exclude=.git --exclude='*.egg-info' --exclude=build --exclude='__pycache__' \
    -cf - pyproject.toml README.md glexec_py plugins sutest | tar -C "$build" -xf -
"$venv/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$build"
"$venv/bin/pip" install -q --disable-pip-version-check "$build[test]"
cd "$here"
set +e
"$venv/bin/pytest" --require-all "$@"
status=$?
set -e
# pytest exits 5 when nothing was collected: that is a failure here, never a pass.
exit $status
