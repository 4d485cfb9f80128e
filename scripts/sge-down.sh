#!/usr/bin/env bash
# sge-down.sh: stop what scripts/sge-up.sh started (sge_execd, sge_qmaster), by recorded pid,
# after deleting every job. Packages and the cell configuration stay (sge-up.sh is then fast).
set -euo pipefail
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
STATE=/var/lib/glexec-py-sge
[ "$(id -u)" = 0 ] || { echo "sge-down: run me as root" >&2; exit 1; }

alive() { local pid; pid=$(cat "$1" 2>/dev/null) || return 1; [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]; }
stop_pid() {  # TERM, up to 20 s (the qmaster takes ~10 s), then KILL
  local pid
  alive "$1" "$2" || return 0
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 80); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
}

command -v qdel >/dev/null && qdel -f -u '*' >/dev/null 2>&1 || true
for f in /var/spool/gridengine/execd/*/execd.pid; do
  [ -e "$f" ] && stop_pid "$f" sge_execd
done
# Shepherds of deleted jobs end on their own; a stuck one would keep job processes alive.
for pid in $(pgrep -x sge_shepherd || true); do kill -9 "$pid" 2>/dev/null || true; done
stop_pid /var/spool/gridengine/qmaster/qmaster.pid sge_qmaster
rm -f "$STATE/qmaster" "$STATE/execd"
echo "sge-down: stopped" >&2
