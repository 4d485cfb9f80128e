#!/usr/bin/env bash
# slurm-down.sh: stop what scripts/slurm-up.sh started, by recorded pid; --purge also removes
# the generated configs (restoring *.before-glexec-py), spool, logs and state. Packages stay.
set -euo pipefail
STATE=/var/lib/glexec-py-slurm
[ "$(id -u)" = 0 ] || { echo "slurm-down: run me as root" >&2; exit 1; }

alive() { local pid; pid=$(cat "$1" 2>/dev/null) || return 1; [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]; }
stop_pid() {
  local pid
  alive "$1" "$2" || { rm -f "$1"; return 0; }
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

if command -v scancel >/dev/null && alive /run/slurmctld.pid slurmctld; then
  scancel --full -u root 2>/dev/null || true
  squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null || true
fi
stop_pid /run/slurmd.pid slurmd
stop_pid /run/slurmctld.pid slurmctld
stop_pid /run/slurmdbd.pid slurmdbd
for pid in $(pgrep -x slurmstepd || true); do kill -9 "$pid" 2>/dev/null || true; done
[ -e "$STATE/mariadbd" ] && { stop_pid /run/mysqld/mysqld.pid mariadbd; rm -f "$STATE/mariadbd"; }
[ -e "$STATE/munged" ] && { stop_pid /run/munge/munged.pid munged; rm -f "$STATE/munged"; }
# Step cgroups stay behind after slurmd stops; remove the empty ones, deepest first.
find /sys/fs/cgroup -depth -type d -name 'slurm*' 2>/dev/null | while read -r d; do
  find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done
if [ "${1:-}" = --purge ]; then
  for f in /etc/slurm/slurm.conf /etc/slurm/cgroup.conf /etc/slurm/slurmdbd.conf; do
    if [ -e "$f.before-glexec-py" ]; then mv -f "$f.before-glexec-py" "$f"
    elif grep -q glexec-py "$f" 2>/dev/null; then rm -f "$f"; fi
  done
  rm -rf /var/spool/slurmctld/* /var/spool/slurmd/* /var/log/slurm/* "$STATE"
fi
echo "slurm-down: stopped" >&2
