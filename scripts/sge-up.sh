#!/usr/bin/env bash
# sge-up.sh: a single-node Grid Engine (Debian 12's gridengine 8.1.9) on this host, for
# glexec-sutest and CI. Idempotent: installs missing packages (preseeded, non-interactive),
# configures the cell once, starts sge_qmaster and sge_execd if they are not running, and waits
# until the queue instance takes jobs. No systemd needed.
#
# Knobs: SGE_UP_GID_RANGE=47880-47899  the additional (tracking) group ids sge_execd hands out
#        SGE_UP_TIMEOUT=180              seconds to wait for the daemons
# Grid Engine tracks a job's processes by that additional gid (execd_params
# ENABLE_ADDGRP_KILL=TRUE): kill, suspend and online usage follow it (batch-interop.md A.5, B.6).
# Pitfalls handled (B.6): the host name must not resolve to "localhost" for the daemons
# (host_aliases), qconf -aq wants an editor (a sed script), jobs of uid < min_uid (1000, so
# root) are refused, the daemons cannot be started by the packages without systemd.
# Prints "sge=up seconds=<n>" when a job can run.
set -euo pipefail

gid_range=${SGE_UP_GID_RANGE:-47880-47899}
timeout=${SGE_UP_TIMEOUT:-180}
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
common=$SGE_ROOT/$SGE_CELL/common
STATE=/var/lib/glexec-py-sge
started=$(date +%s)

say() { echo "sge-up: $*" >&2; }
fail() { say "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || fail "run me as root"

node=$(hostname)
getent hosts "$node" >/dev/null || echo "127.0.1.1 $node  # glexec-py sge-up.sh" >>/etc/hosts

need=(gridengine-master gridengine-exec gridengine-client)
absent=()
for pkg in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || absent+=("$pkg")
done
if [ ${#absent[@]} -gt 0 ]; then
  say "installing ${absent[*]}"
  debconf-set-selections <<EOF
gridengine-common shared/gridengineconfig boolean true
gridengine-common shared/gridenginecell string default
gridengine-common shared/gridenginesqmaster string $node
gridengine-master shared/gridengineconfig boolean true
gridengine-master shared/gridenginecell string default
gridengine-master shared/gridenginesqmaster string $node
gridengine-client shared/gridengineconfig boolean true
gridengine-exec shared/gridengineconfig boolean true
EOF
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${absent[@]}" >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${absent[@]}" >/dev/null; }
fi
install -d -m 0700 "$STATE"
[ -d "$common" ] || fail "$common missing: the gridengine-master postinst did not make the cell"

# The daemons and clients must agree on one name; with "127.0.0.1 localhost" first in
# /etc/hosts the qmaster would call this host "localhost".
printf '%s localhost\n' "$node" >"$common/host_aliases"
echo "$node" >"$common/act_qmaster"

alive() {  # alive PIDFILE COMM
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}
until_ok() {  # until_ok SECONDS WHAT CMD...
  local limit=$(( $(date +%s) + $1 )) what=$2; shift 2
  while ! "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$limit" ] || fail "gave up after $1 s waiting for $what"
    sleep 0.5
  done
}

qmaster_pid=/var/spool/gridengine/qmaster/qmaster.pid
if ! alive "$qmaster_pid" sge_qmaster; then
  say "starting sge_qmaster"
  /usr/sbin/sge_qmaster </dev/null >/dev/null 2>&1
  touch "$STATE/qmaster"
fi
until_ok "$timeout" "sge_qmaster" qconf -sh

# Cell configuration, each step only when it is not already so.
qconf -sh 2>/dev/null | grep -qx "$node" || qconf -ah "$node" >/dev/null
qconf -ss 2>/dev/null | grep -qx "$node" || qconf -as "$node" >/dev/null
if ! qconf -se "$node" >/dev/null 2>&1; then
  tmp=$(mktemp)
  printf 'hostname %s\nload_scaling NONE\ncomplex_values NONE\nuser_lists NONE\nxuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n' "$node" >"$tmp"
  qconf -Ae "$tmp" >/dev/null
  rm -f "$tmp"
fi
editor=$(mktemp)
chmod 0700 "$editor"
if ! qconf -sq all.q >/dev/null 2>&1; then
  cat >"$editor" <<EOF
#!/bin/sh
sed -i -e 's/^hostlist .*/hostlist $node/' -e 's/^slots .*/slots 8/' -e 's/^pe_list .*/pe_list NONE/' \
  -e 's/^shell .*/shell \/bin\/sh/' -e 's/^shell_start_mode .*/shell_start_mode unix_behavior/' "\$1"
EOF
  EDITOR=$editor qconf -aq all.q >/dev/null
fi
conf=$(qconf -sconf global 2>/dev/null || true)
if ! grep -q "^gid_range *$gid_range\$" <<<"$conf" || ! grep -q "^execd_params *ENABLE_ADDGRP_KILL=TRUE\$" <<<"$conf"; then
  cat >"$editor" <<EOF
#!/bin/sh
sed -i -e 's/^gid_range .*/gid_range $gid_range/' -e 's/^execd_params .*/execd_params ENABLE_ADDGRP_KILL=TRUE/' \
  -e 's/^load_report_time .*/load_report_time 00:00:05/' "\$1"
EOF
  EDITOR=$editor qconf -mconf global >/dev/null 2>&1
  # a running execd reads execd_params when it starts
  alive "/var/spool/gridengine/execd/$node/execd.pid" sge_execd && {
    kill "$(cat "/var/spool/gridengine/execd/$node/execd.pid")"; sleep 2; } || true
fi
rm -f "$editor"
# A fast scheduler: jobs start within a second or two instead of the default 15 s interval.
if ! qconf -ssconf | grep -q '^schedule_interval *0:0:1$'; then
  editor=$(mktemp); chmod 0700 "$editor"
  printf '#!/bin/sh\nsed -i -e "s/^schedule_interval .*/schedule_interval 0:0:1/" -e "s/^flush_submit_sec .*/flush_submit_sec 1/" -e "s/^flush_finish_sec .*/flush_finish_sec 1/" "$1"\n' >"$editor"
  EDITOR=$editor qconf -msconf >/dev/null 2>&1
  rm -f "$editor"
fi

execd_alive() {
  local f
  for f in /var/spool/gridengine/execd/*/execd.pid; do alive "$f" sge_execd && return 0; done
  return 1
}
if ! execd_alive; then
  say "starting sge_execd"
  /usr/sbin/sge_execd </dev/null >/dev/null 2>&1
  touch "$STATE/execd"
fi
# The queue instance takes jobs once the execd has reported a load (state neither 'u' nor 'a').
queue_ready() {
  local line
  line=$(qstat -f -q all.q 2>/dev/null | grep "^all.q@") || return 1
  # columns: queuename qtype resv/used/tot load_avg arch [states]
  [ -z "$(awk 'NF > 5 {print $6}' <<<"$line")" ]
}
until_ok "$timeout" "the all.q queue instance on $node" queue_ready
echo "sge=up seconds=$(( $(date +%s) - started ))"
