#!/usr/bin/env bash
# glexec-py demo site, end to end, on a fresh Debian 12 machine (run as root):
#   a test CA and a user certificate, pool accounts and a gridmapdir, a grid-mapfile, an
#   lcmaps.db, /etc/glexec.conf, the setuid launcher at /usr/sbin/glexec, an unprivileged pilot
#   account holding the user's proxy (made with grid-proxy-init) -- and then, as the pilot:
#       GLEXEC_CLIENT_CERT=<proxy> /usr/sbin/glexec /usr/bin/id
#   which prints the identity of the mapped pool account.
# Idempotent: re-running keeps accounts and the CA and re-installs the launcher.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "demo: run me as root" >&2; exit 1; }
umask 022
say() { printf '\n==> %s\n' "$*"; }

say "system packages (openssl, grid tools, compiler)"
"$here/scripts/install-system-packages.sh" --runtime
export DEBIAN_FRONTEND=noninteractive
for p in globus-proxy-utils globus-gsi-cert-utils-progs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    { apt-get update -qq >/dev/null; apt-get install -y -qq --no-install-recommends "$p" >/dev/null; }
done

say "glexec-py into its own environment, /opt/glexec-py"
"$here/scripts/install-glexec-py.sh" --no-launcher

say "test CA, user certificate and VOMS trust under /etc/grid-security"
demo=/var/lib/glexec-py-demo
"$here/scripts/make-test-ca.sh" "$demo" >/dev/null
install -d -m 0755 /etc/grid-security /etc/grid-security/certificates /etc/grid-security/vomsdir
cp -a "$demo/certificates/." /etc/grid-security/certificates/
cp -a "$demo/vomsdir/." /etc/grid-security/vomsdir/
dn=$(openssl x509 -in "$demo/user/usercert.pem" -noout -subject -nameopt compat | sed 's/^subject=//')

say "accounts: pilot 'glexecpilot', pool 'demopool001..005' (group demopool)"
getent group demopool >/dev/null || groupadd demopool
for i in 1 2 3 4 5; do
  u=$(printf 'demopool%03d' $i)
  id "$u" >/dev/null 2>&1 || useradd -m -g demopool -s /bin/sh "$u"
done
id glexecpilot >/dev/null 2>&1 || useradd -m -s /bin/sh glexecpilot

say "gridmapdir, grid-mapfile, lcmaps.db, glexec.conf"
install -d -m 0755 /etc/grid-security/gridmapdir /etc/lcmaps
for i in 1 2 3 4 5; do touch "/etc/grid-security/gridmapdir/$(printf 'demopool%03d' $i)"; done
printf '"%s" .demopool\n' "$dn" > /etc/grid-security/grid-mapfile
cat > /etc/lcmaps/lcmaps-glexec.db <<DB
# glexec-py demo policy: verify the proxy, then take a pool account for the DN
verifyproxy = "lcmaps_verify_proxy.mod -certdir /etc/grid-security/certificates"
poolaccount = "lcmaps_poolaccount.mod -gridmap /etc/grid-security/grid-mapfile -gridmapdir /etc/grid-security/gridmapdir"
good = "lcmaps_dummy_good.mod"

glexec_get_account:
verifyproxy -> poolaccount
poolaccount -> good
DB
cat > /etc/glexec.conf <<CONF
# glexec-py demo site (scripts/demo.sh); every key is documented in glexec.conf(5)
[glexec]
user_white_list = glexecpilot
linger = yes
log_destination = file
log_file = /var/log/glexec/glexec.log
lcmaps_db_file = /etc/lcmaps/lcmaps-glexec.db
lcmaps_get_account_policy = glexec_get_account
CONF
chmod 0644 /etc/glexec.conf /etc/lcmaps/lcmaps-glexec.db /etc/grid-security/grid-mapfile
install -d -m 0755 /var/log/glexec

say "the setuid launcher: glexec-install --bin /usr/sbin/glexec --config /etc/glexec.conf"
/opt/glexec-py/bin/glexec-install --bin /usr/sbin/glexec --config /etc/glexec.conf
ls -l /usr/sbin/glexec

say "the pilot makes the user's proxy with grid-proxy-init"
pilot_home=$(getent passwd glexecpilot | cut -d: -f6)
install -d -o glexecpilot -m 0700 "$pilot_home/.globus"
install -o glexecpilot -m 0644 "$demo/user/usercert.pem" "$pilot_home/.globus/usercert.pem"
install -o glexecpilot -m 0400 "$demo/user/userkey.pem" "$pilot_home/.globus/userkey.pem"
proxy="$pilot_home/payload-proxy.pem"
runuser -u glexecpilot -- grid-proxy-init -q -rfc -valid 2:00 \
    -cert "$pilot_home/.globus/usercert.pem" -key "$pilot_home/.globus/userkey.pem" \
    -out "$proxy" </dev/null

say "as the pilot: GLEXEC_CLIENT_CERT=$proxy /usr/sbin/glexec /usr/bin/id"
echo "pilot:   $(runuser -u glexecpilot -- id)"
cd "$pilot_home"
payload=$(runuser -u glexecpilot -- env GLEXEC_CLIENT_CERT="$proxy" /usr/sbin/glexec /usr/bin/id)
echo "payload: $payload"
echo
echo "log (/var/log/glexec/glexec.log):"
tail -n 6 /var/log/glexec/glexec.log
case $payload in
  *"uid=$(id -u demopool001)("*|*demopool*) echo; echo "demo: OK - the payload ran under the mapped pool account" ;;
  *) echo "demo: FAILED - the payload did not run under a pool account" >&2; exit 1 ;;
esac
