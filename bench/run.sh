#!/usr/bin/env bash
# The one benchmark command (as root, after the README's set-up):  bash bench/run.sh [--runs N]
# Installs what the benchmark needs (Debian packages incl. liblcmaps-dev and hyperfine's
# neighbours, the product environment /opt/glexec-py if missing), then runs bench/run.py with
# Debian's python3, which builds its own site, launchers and LCMAPS driver, prints the tables and
# removes everything it made.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "bench: run me as root" >&2; exit 1; }
"$here/scripts/install-system-packages.sh"
[ -x /opt/glexec-py/bin/glexec-install ] || "$here/scripts/install-glexec-py.sh" --no-launcher
exec /usr/bin/python3 -I "$here/bench/run.py" "$@"
