#!/usr/bin/env bash
# slurm-up.sh: a single-node Slurm (Debian 12's 22.05) on loopback, for glexec-sutest and CI.
#
# Idempotent: installs missing packages, (re)writes slurm.conf/cgroup.conf[/slurmdbd.conf] only
# when their content changes, (re)starts only daemons that are not running or whose config
# changed, then waits until the node is idle. No systemd needed: daemons run with -D in their own
# session, stdio on log files. Everything started is recorded in $STATE for slurm-down.sh.
#
# Knobs: SLURM_UP_PROCTRACK=auto|cgroup|linuxproc|pgid  (auto: cgroup if a v1 freezer is mounted)
#        SLURM_UP_DBD=0|1      MariaDB (127.0.0.1 only) + slurmdbd, so that sacct works
#        SLURM_UP_TIMEOUT=120  seconds to wait for the node
# Prints one line "proctrack=<plugin> dbd=<0|1> seconds=<n>" on stdout when the node is idle.
set -euo pipefail

proctrack=${SLURM_UP_PROCTRACK:-auto}
dbd=${SLURM_UP_DBD:-0}
timeout=${SLURM_UP_TIMEOUT:-120}
conf=/etc/slurm
logs=/var/log/slurm
STATE=/var/lib/glexec-py-slurm
started=$(date +%s)

say() { echo "slurm-up: $*" >&2; }
fail() { say "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || fail "run me as root"

need=(slurm-wlm slurmctld slurmd slurm-client munge)
[ "$dbd" = 1 ] && need+=(slurmdbd mariadb-server)
absent=()
for pkg in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || absent+=("$pkg")
done
if [ ${#absent[@]} -gt 0 ]; then
  say "installing ${absent[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # Their postinst scripts try to start services; without systemd that only warns.
  apt-get install -y -qq --no-install-recommends "${absent[@]}" >/dev/null
fi
install -d -m 0700 "$STATE"

alive() {  # alive PIDFILE COMM: the recorded pid runs the expected program
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}
detach() {  # detach LOG CMD...: own session, no tty, stdio on LOG
  local out=$1; shift
  setsid -f "$@" </dev/null >>"$out" 2>&1
}
until_ok() {  # until_ok SECONDS WHAT CMD...
  local limit=$(( $(date +%s) + $1 )) what=$2; shift 2
  while ! "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$limit" ] || fail "gave up after $1 s waiting for $what"
    sleep 0.3
  done
}
replace_if_different() {  # replace_if_different FILE MODE OWNER < content; true if replaced
  local new
  new=$(mktemp)
  cat >"$new"
  if cmp -s "$new" "$1"; then rm -f "$new"; return 1; fi
  [ -e "$1" ] && [ ! -e "$1.before-glexec-py" ] && ! grep -q glexec-py "$1" && cp -p "$1" "$1.before-glexec-py"
  install -m "$2" -o "$3" -g "$3" "$new" "$1"
  rm -f "$new"
}
stop_pid() {  # stop_pid PIDFILE COMM: TERM, then KILL after 10 s
  local pid
  alive "$1" "$2" || return 0
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
}

node=$(hostname -s)
getent hosts "$node" >/dev/null || echo "127.0.1.1 $node  # glexec-py slurm-up.sh" >>/etc/hosts

# munge: the package made a key; the runtime dir is normally systemd's job.
install -d -o munge -g munge -m 0755 /run/munge
if ! alive /run/munge/munged.pid munged; then
  say "starting munged"
  runuser -u munge -- /usr/sbin/munged
  touch "$STATE/munged"
fi
until_ok 20 munge bash -c 'munge -n | unmunge'

if [ "$dbd" = 1 ]; then
  install -d -o mysql -g root -m 0755 /run/mysqld
  if ! alive /run/mysqld/mysqld.pid mariadbd; then
    say "starting mariadbd on 127.0.0.1"
    detach "$STATE/mariadb.log" /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
      --pid-file=/run/mysqld/mysqld.pid
    touch "$STATE/mariadbd"
  fi
  until_ok 60 mariadb mariadb -e 'select 1'
  [ -s "$STATE/dbpass" ] || (umask 077; od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$STATE/dbpass")
  pass=$(cat "$STATE/dbpass")
  mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$pass';
    ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$pass';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  install -d -o slurm -g slurm -m 0755 "$logs"
  if replace_if_different $conf/slurmdbd.conf 0600 slurm <<EOF
# written by glexec-py scripts/slurm-up.sh
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=slurm
PidFile=/run/slurmdbd.pid
LogFile=$logs/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$pass
StorageLoc=slurm_acct_db
EOF
  then stop_pid /run/slurmdbd.pid slurmdbd; fi
  if ! alive /run/slurmdbd.pid slurmdbd; then
    say "starting slurmdbd"
    detach "$logs/slurmdbd.stdout" /usr/sbin/slurmdbd -D
  fi
  until_ok 60 "slurmdbd on port 6819" bash -c 'exec 3<>/dev/tcp/127.0.0.1/6819'
  accounting="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost"
else
  accounting="AccountingStorageType=accounting_storage/none"
fi

if [ "$proctrack" = auto ]; then
  if grep -q ' /sys/fs/cgroup/freezer cgroup ' /proc/mounts; then proctrack=cgroup; else proctrack=linuxproc; fi
fi
case $proctrack in
  cgroup) task="task/cgroup,task/affinity"; gather=jobacct_gather/cgroup ;;
  linuxproc|pgid) task=task/none; gather=jobacct_gather/linux ;;
  *) fail "SLURM_UP_PROCTRACK must be auto, cgroup, linuxproc or pgid" ;;
esac
hw=$(slurmd -C | head -1)
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$hw"; }
memory=$(( $(field RealMemory) * 9 / 10 ))
install -d -o slurm -g slurm -m 0755 /var/spool/slurmctld "$logs"
install -d -m 0755 /var/spool/slurmd
changed=0
# OverSubscribe lets the harness run its small jobs side by side on a 2-core box.
replace_if_different $conf/slurm.conf 0644 root <<EOF && changed=1
# written by glexec-py scripts/slurm-up.sh: one node on loopback
ClusterName=sutest
SlurmctldHost=$node(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$logs/slurmctld.log
SlurmdLogFile=$logs/slurmd.log
ProctrackType=proctrack/$proctrack
TaskPlugin=$task
JobAcctGatherType=$gather
JobAcctGatherFrequency=1
$accounting
JobCompType=jobcomp/filetxt
JobCompLoc=$logs/jobcomp.log
PrologFlags=Contain
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
KillWait=3
MinJobAge=300
MpiDefault=none
NodeName=$node NodeAddr=127.0.0.1 CPUs=$(field CPUs) SocketsPerBoard=$(field SocketsPerBoard) CoresPerSocket=$(field CoresPerSocket) ThreadsPerCore=$(field ThreadsPerCore) RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:8
EOF
if [ -d /sys/fs/cgroup/freezer ]; then plugin=cgroup/v1; else plugin=autodetect; fi
replace_if_different $conf/cgroup.conf 0644 root <<EOF && changed=1
# written by glexec-py scripts/slurm-up.sh (read only by the cgroup plugins)
CgroupPlugin=$plugin
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=no
ConstrainRAMSpace=yes
ConstrainDevices=no
EOF
if [ "$changed" = 1 ]; then
  # A new proctrack/gather plugin needs both daemons restarted with no step running.
  scancel --full -u root 2>/dev/null || true
  stop_pid /run/slurmd.pid slurmd
  stop_pid /run/slurmctld.pid slurmctld
  pkill -KILL -x slurmstepd 2>/dev/null || true
fi
if ! alive /run/slurmctld.pid slurmctld; then
  say "starting slurmctld"
  detach "$logs/slurmctld.stdout" /usr/sbin/slurmctld -D
fi
until_ok 30 slurmctld scontrol ping
if ! alive /run/slurmd.pid slurmd; then
  say "starting slurmd (proctrack/$proctrack)"
  detach "$logs/slurmd.stdout" /usr/sbin/slurmd -D
fi
limit=$(( $(date +%s) + timeout ))
while :; do
  state=$(sinfo -h -n "$node" -o %T 2>/dev/null || true)
  case $state in
    idle|mixed|allocated) break ;;
    down*|drain*|fail*) scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  [ "$(date +%s)" -lt "$limit" ] || fail "node still '${state:-unknown}' after ${timeout}s (see $logs/slurmd.log)"
  sleep 0.3
done
if [ "$dbd" = 1 ]; then
  until_ok 30 "cluster registration" bash -c 'sacctmgr -n -P list cluster format=cluster | grep -qx sutest'
  sacctmgr -i -Q add account sut Description=sutest Organization=sutest >/dev/null 2>&1 || true
  sacctmgr -i -Q add user root Account=sut >/dev/null 2>&1 || true
fi
echo "proctrack=$proctrack dbd=$dbd seconds=$(( $(date +%s) - started ))"
