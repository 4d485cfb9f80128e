#!/usr/bin/env bash
# Install glexec-py from this checkout into its own root-owned virtual environment and build the
# privileged launcher from it. Run as root on Debian 12.
#
#   scripts/install-glexec-py.sh [--prefix DIR] [--bin PATH] [--config PATH] [--declare-only]
#                                [--no-launcher] [--extras NAME]
#
# The environment (default /opt/glexec-py) uses Debian's /usr/bin/python3: a root-owned
# interpreter whose start-up runs no .pth files of another installation. It is a regular
# (non-editable) install, compiled to .pyc at install time, because the launcher runs it with
# -I -S -B and checks that every file of it is root-owned.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
prefix=/opt/glexec-py bin=/usr/sbin/glexec config=/etc/glexec.conf declare="" launcher=1 extras=""
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --declare-only) declare=--declare-only; shift ;;
    --no-launcher) launcher=0; shift ;;
    --extras) extras="[$2]"; shift 2 ;;
    *) echo "install-glexec-py: unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "install-glexec-py: must run as root" >&2; exit 1; }
umask 022
"$here/scripts/install-system-packages.sh" --runtime
if [ ! -x "$prefix/bin/python" ]; then
  /usr/bin/python3 -m venv "$prefix"
  "$prefix/bin/pip" install -q --disable-pip-version-check --upgrade pip setuptools wheel
fi
# Build from a private copy: pip must not write build artefacts into a developer's checkout.
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
tar -C "$here" --exclude=.git --exclude='*.egg-info' --exclude=build --exclude='__pycache__' \
    -cf - pyproject.toml README.md glexec_py plugins sutest | tar -C "$build" -xf -
"$prefix/bin/pip" install -q --disable-pip-version-check --no-warn-script-location \
    --force-reinstall --no-deps "$build"
"$prefix/bin/pip" install -q --disable-pip-version-check "$build$extras"
site=$("$prefix/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$prefix/bin/python" -m compileall -q "$site" >/dev/null || true
# the launcher's modules in one file (glexec_py/codebundle.py): ~1 ms less per call
"$prefix/bin/python" -I -m glexec_py.codebundle "$site" >/dev/null
# the lingering launcher's small C waiter (glexec_py/launch/glexec_waiter.c), when stale
"$prefix/bin/python" -I -c 'import sys; from glexec_py.tools.install import install_waiter; install_waiter(sys.argv[1])' "$site"
if [ "$launcher" = 1 ]; then
  "$prefix/bin/glexec-install" --bin "$bin" --config "$config" $declare
fi
