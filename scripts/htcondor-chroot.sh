#!/usr/bin/env bash
# htcondor-chroot.sh: a real HTCondor personal pool (Debian 13's condor) in a chroot, for the
# condor_update integration test. Debian 12 has no HTCondor package; Debian 13 has, and its
# binaries run on this kernel inside a chroot.
#
#   htcondor-chroot.sh build   debootstrap trixie (minbase) + condor into the cached tree
#                              $HTCONDOR_CACHE/root (reruns reuse it: only 'up' work remains)
#   htcondor-chroot.sh up      build, mount /proc /sys /dev, bind the host's glexec-py launcher
#                              pieces (see below), write the pool config, start condor_master and
#                              wait until the schedd and one slot answer
#   htcondor-chroot.sh down    stop condor (by pid), unmount everything below the tree
#   htcondor-chroot.sh path    print the chroot's root
#
# The launcher is bind mounted, not reinstalled: the front ends under
# /usr/local/libexec/glexec-py-tests, their site directories under /run/glexec-py-tests, the
# product environment /opt/glexec-py and the Python 3.11 it was built with (/usr/bin/python3.11,
# /usr/lib/python3.11; trixie ships 3.13 only). The front end pins that interpreter and
# site-packages (glexec -V), so the chroot's own Python is never used; glibc in trixie is newer
# than bookworm's, so bookworm binaries run there. Set HTCONDOR_BINDS to override the list.
#
# Pitfalls handled (python-ecosystem.md 4): execute dir owned by condor; IPv6 off (the schedd
# otherwise refuses QMGMT writes); MOUNT_UNDER_SCRATCH empty (no mount namespace in a chroot);
# no PID namespaces; no cgroups. The mirror is the host's own Debian mirror (apt sources).
set -euo pipefail

cache=${HTCONDOR_CACHE:-/var/cache/glexec-py-htcondor}
root=$cache/root
binds=${HTCONDOR_BINDS:-/opt/glexec-py /usr/bin/python3.11 /usr/lib/python3.11 /run/glexec-py-tests /usr/local/libexec/glexec-py-tests}
timeout=${HTCONDOR_TIMEOUT:-120}

say() { echo "htcondor-chroot: $*" >&2; }
fail() { say "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || fail "run me as root"

host_mirror() {  # the first Debian (non-security) mirror the host's apt uses
  local uri
  uri=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | tr ' ' '\n' | grep -v -- '-security' | grep '/debian/\?$' | head -1 || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $2 !~ /^\[/ && $2 !~ /security/ {print $2; exit}' \
                         /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$uri" ] || fail "no Debian mirror found in the host's apt sources"
  echo "$uri"
}

build() {
  if [ -e "$root/.glexec-py-complete" ]; then return 0; fi
  command -v debootstrap >/dev/null || {
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
      >/dev/null || { apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  }
  local mirror t0
  mirror=$(host_mirror)
  t0=$(date +%s)
  unmount_all
  # Never delete through a bind mount of the host's files.
  ! awk -v r="$root/" 'index($2, r) == 1' /proc/mounts | grep -q . || fail "mounts left below $root"
  rm -rf "$root"
  install -d -m 0755 "$cache"
  say "debootstrap trixie (minbase) into $root"
  debootstrap --variant=minbase trixie "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 \
    || fail "debootstrap failed (see $cache/debootstrap.log)"
  mount_system
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  say "installing condor in the chroot"
  chroot "$root" apt-get update -qq >>"$cache/debootstrap.log" 2>&1
  # libexpat1/libffi8/libssl3t64/libcap2: what the host's python3.11 and its extension modules
  # (and glexec-py's wheels) link against when they run inside the chroot.
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends condor libexpat1 libffi8 libssl3t64 libcap2 zlib1g \
    >>"$cache/debootstrap.log" 2>&1 || fail "apt-get install condor failed (see $cache/debootstrap.log)"
  chroot "$root" apt-get clean
  unmount_all
  touch "$root/.glexec-py-complete"
  say "tree ready in $(( $(date +%s) - t0 )) s"
}

mounted() { grep -q " $1 " /proc/mounts; }

mount_system() {
  mounted "$root/proc" || mount -t proc proc "$root/proc"
  mounted "$root/sys" || mount -t sysfs sys "$root/sys"
  mounted "$root/dev" || mount --bind /dev "$root/dev"
  mounted "$root/dev/pts" || mount --bind /dev/pts "$root/dev/pts"
}

mount_binds() {
  local src dst
  for src in $binds; do
    [ -e "$src" ] || install -d -m 0755 "$src"
    dst=$root$src
    if [ -d "$src" ]; then install -d -m 0755 "$dst"; else
      install -d -m 0755 "$(dirname "$dst")"; [ -e "$dst" ] || : >"$dst"; fi
    mounted "$dst" || mount --bind "$src" "$dst"
  done
}

unmount_all() {  # everything mounted at or below the tree, deepest first
  [ -d "$root" ] || return 0
  local target
  awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | while read -r target; do
    umount "$target" 2>/dev/null || umount -l "$target"
  done
}

condor_pid() { cat "$root/run/condor/glexec-py-master.pid" 2>/dev/null || true; }

master_alive() {
  local pid
  pid=$(condor_pid)
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = condor_master ]
}

write_config() {
  install -d -m 0755 "$root/etc/condor/config.d"
  cat >"$root/etc/condor/config.d/50-glexec-py.config" <<'EOF'
# written by glexec-py scripts/htcondor-chroot.sh: a personal pool on loopback
NETWORK_INTERFACE = 127.0.0.1
CONDOR_HOST = 127.0.0.1
ENABLE_IPV6 = False
use ROLE : CentralManager
use ROLE : Submit
use ROLE : Execute
SEC_DEFAULT_AUTHENTICATION_METHODS = FS
ALLOW_READ = *
ALLOW_WRITE = *
ALLOW_DAEMON = *
ALLOW_ADMINISTRATOR = $(FULL_HOSTNAME), 127.0.0.1, root@*
BASE_CGROUP =
CGROUP_MEMORY_LIMIT_POLICY = none
USE_PID_NAMESPACES = False
MOUNT_UNDER_SCRATCH =
START = TRUE
SUSPEND = FALSE
PREEMPT = FALSE
KILL = FALSE
NUM_CPUS = 2
SCHEDD_INTERVAL = 5
NEGOTIATOR_INTERVAL = 2
NEGOTIATOR_CYCLE_DELAY = 1
UPDATE_INTERVAL = 5
STARTER_UPDATE_INTERVAL = 2
STARTER_INITIAL_UPDATE_INTERVAL = 1
SHADOW_QUEUE_UPDATE_INTERVAL = 2
STARTER_DEBUG = D_FULLDEBUG D_SYSCALLS
EOF
}

up() {
  build
  mount_system
  mount_binds
  write_config
  install -d -o condor -g condor -m 0755 "$root/var/lib/condor/execute" "$root/var/log/condor" \
    "$root/var/lib/condor/spool" "$root/run/condor" 2>/dev/null || {
    chroot "$root" install -d -o condor -g condor -m 0755 /var/lib/condor/execute \
      /var/log/condor /var/lib/condor/spool /run/condor; }
  chroot "$root" chown condor:condor /var/lib/condor/execute /var/log/condor \
    /var/lib/condor/spool /run/condor
  if ! master_alive; then
    say "starting condor_master"
    chroot "$root" /usr/sbin/condor_master -pidfile /run/condor/glexec-py-master.pid
  fi
  local limit=$(( $(date +%s) + timeout ))
  until chroot "$root" condor_q -totals >/dev/null 2>&1 \
        && [ -n "$(chroot "$root" condor_status -af Name 2>/dev/null)" ]; do
    [ "$(date +%s)" -lt "$limit" ] || fail "pool not ready after ${timeout}s (see $root/var/log/condor)"
    sleep 1
  done
  say "pool ready"
}

down() {
  if master_alive; then
    local pid
    pid=$(condor_pid)
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  # Daemons the master started, identified by their root directory being the chroot.
  local p
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null || true
  done
  rm -f "$root/run/condor/glexec-py-master.pid"
  unmount_all
}

case ${1:-} in
  build) build ;;
  up) up ;;
  down) down ;;
  path) echo "$root" ;;
  *) echo "usage: $0 build|up|down|path" >&2; exit 2 ;;
esac
