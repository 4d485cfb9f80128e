#!/usr/bin/env bash
# Install the Debian packages glexec-py needs to build, run and test, in one apt transaction.
# Idempotent: already-installed packages are skipped. Run as root on Debian 12.
#   --runtime   only what a site needs to build and run the launcher (default: everything)
set -euo pipefail
[ "$(id -u)" -eq 0 ] || { echo "install-system-packages: must run as root" >&2; exit 1; }

runtime=(python3 python3-venv python3-dev gcc libc6-dev libcap-dev openssl)
testing=(
  rsyslog strace procps psmisc util-linux sudo man-db groff-base
  globus-proxy-utils globus-gsi-cert-utils-progs voms-clients
  lcmaps-plugins-verify-proxy liblcmaps0 liblcas0
  lcmaps-plugins-basic-localaccount lcmaps-plugins-basic-poolaccount
  lcmaps-plugins-basic-posixenf lcmaps-plugins-basic-bandn lcmaps-plugins-basic-dummy
  lcmaps-plugins-voms libvomsapi1v5 liblcmaps-dev hyperfine dpkg-dev fakeroot lintian debootstrap
)
want=("${runtime[@]}")
[ "${1:-}" = "--runtime" ] || want+=("${testing[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-system-packages: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
