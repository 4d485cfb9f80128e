#!/usr/bin/env bash
# Build a grid-style test CA directory with openssl only: for demos and the test suite.
#   scripts/make-test-ca.sh OUTDIR
# Writes (idempotent: an existing OUTDIR/ca is reused, missing pieces are made again):
#   OUTDIR/certificates/<hash>.0 .signing_policy .namespaces .r0   the CA, its policies, its CRL
#   OUTDIR/user/{usercert.pem,userkey.pem}      /DC=org/DC=example/O=glexec-py demo/CN=Demo User
#   OUTDIR/revoked/{usercert.pem,userkey.pem}   .../CN=Revoked User (listed in the CRL)
#   OUTDIR/voms/{hostcert.pem,hostkey.pem}      .../CN=voms.example.org (a VOMS server)
#   OUTDIR/vomsdir/<vo>/voms.example.org.lsc    for each VO in $VOS (default: "atlas dteam")
#   OUTDIR/ca/                                  CA key, openssl ca database (keep private)
# Then, as the pilot user:  grid-proxy-init -rfc -cert OUTDIR/user/usercert.pem \
#   -key OUTDIR/user/userkey.pem -out /tmp/x509up_u$(id -u)
# Key files are 0600 and owned by the invoking user (grid-proxy-init insists).
set -euo pipefail
out=${1:?usage: make-test-ca.sh OUTDIR}
vos=${VOS:-atlas dteam}
days=${DAYS:-365}
base="/DC=org/DC=example"
ca_subj="$base/CN=glexec-py Test CA"
voms_host=voms.example.org
mkdir -p "$out"/{ca/newcerts,certificates,user,revoked,voms,vomsdir}
out=$(cd "$out" && pwd)
umask 022

cat > "$out/ca/openssl.cnf" <<CNF
[ ca ]
default_ca = testca
[ testca ]
dir = $out/ca
database = \$dir/index.txt
serial = \$dir/serial
crlnumber = \$dir/crlnumber
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
new_certs_dir = \$dir/newcerts
default_md = sha256
default_crl_days = 30
policy = anything
preserve = yes
unique_subject = no
[ anything ]
domainComponent = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
[ usr ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment,dataEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ host ]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:$voms_host
CNF

if [ ! -s "$out/ca/ca.pem" ] || [ ! -s "$out/ca/ca.key" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" \
    -keyout "$out/ca/ca.key" -out "$out/ca/ca.pem" -subj "$ca_subj" \
    -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" 2>/dev/null
  chmod 600 "$out/ca/ca.key"
  : > "$out/ca/index.txt"
  echo 1000 > "$out/ca/serial"
  echo 01 > "$out/ca/crlnumber"
fi

# issue DIR SUBJECT SECTION CERTNAME KEYNAME
issue() {
  local dir=$1 subj=$2 section=$3 certname=$4 keyname=$5
  [ -s "$dir/$certname" ] && [ -s "$dir/$keyname" ] && return 0
  openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/$keyname" -out "$dir/req.csr" \
    -subj "$subj" 2>/dev/null
  openssl ca -batch -config "$out/ca/openssl.cnf" -extensions "$section" -days "$days" \
    -notext -in "$dir/req.csr" -out "$dir/$certname" 2>/dev/null
  rm -f "$dir/req.csr"
  chmod 600 "$dir/$keyname"
  chmod 644 "$dir/$certname"
}
issue "$out/user" "$base/O=glexec-py demo/CN=Demo User" usr usercert.pem userkey.pem
issue "$out/revoked" "$base/O=glexec-py demo/CN=Revoked User" usr usercert.pem userkey.pem
issue "$out/voms" "$base/O=glexec-py demo/CN=$voms_host" host hostcert.pem hostkey.pem
if ! grep -q '^R' "$out/ca/index.txt"; then
  openssl ca -batch -config "$out/ca/openssl.cnf" -revoke "$out/revoked/usercert.pem" 2>/dev/null
fi
openssl ca -batch -config "$out/ca/openssl.cnf" -gencrl -out "$out/ca/crl.pem" 2>/dev/null

hash=$(openssl x509 -in "$out/ca/ca.pem" -noout -hash)
cp "$out/ca/ca.pem" "$out/certificates/$hash.0"
cp "$out/ca/crl.pem" "$out/certificates/$hash.r0"
cat > "$out/certificates/$hash.signing_policy" <<POL
# Globus signing policy of the glexec-py test CA
access_id_CA   X509   '$ca_subj'
pos_rights     globus CA:sign
cond_subjects  globus '"$base/*"'
POL
cat > "$out/certificates/$hash.namespaces" <<NS
# EUGridPMA namespaces of the glexec-py test CA
TO Issuer "$ca_subj" \\
  PERMIT Subject "$base/.*"
NS
chmod 644 "$out/certificates/"*

subject=$(openssl x509 -in "$out/voms/hostcert.pem" -noout -subject -nameopt compat | sed 's/^subject=//')
issuer=$(openssl x509 -in "$out/voms/hostcert.pem" -noout -issuer -nameopt compat | sed 's/^issuer=//')
for vo in $vos; do
  mkdir -p "$out/vomsdir/$vo"
  printf '%s\n%s\n' "$subject" "$issuer" > "$out/vomsdir/$vo/$voms_host.lsc"
  chmod 644 "$out/vomsdir/$vo/$voms_host.lsc"
done
echo "test CA ready in $out (CA hash $hash)"
