#!/usr/bin/env bash
# Makes the OpenSearch secrets compose.prod.yaml mounts (and
# tests/integration/test_opensearch_security.py uses): a CA of our own (not the
# image's demo certificates, whose private key is public), the node's key and
# certificate for NAMES (its hostnames, and IP addresses as IP:a.b.c.d), the
# admin client certificate that deploy/opensearch/setup.sh and the health check
# authenticate with, and one random password per user.
#
#   deploy/opensearch/make-secrets.sh DIR [NAMES...]    (default NAMES: opensearch localhost)
#
# Writes into DIR (0700): ca.pem (the CA every client verifies OpenSearch
# with), opensearch-ca.key (keep it offline), opensearch-node.pem/.key,
# opensearch-admin.pem/.key (keys PKCS#8, as the security plugin wants them),
# opensearch-admin-password, opensearch-dashboards-password, es-password (the
# aggregator's user "logpipe") and es-retention-password (retention's user
# "logpipe-retention"). Certificates and keys are 0644 because OpenSearch's
# user (uid 1000) reads them as bind mounts in its container; the directory
# keeps them from other users of the host. Existing files are kept, so it can
# be run again to add what is missing.
set -euo pipefail
dir=${1:?usage: make-secrets.sh DIR [NAMES...]}
shift
[ $# -gt 0 ] || set -- opensearch localhost
umask 077
mkdir -p "$dir"
cd "$dir"
# DNs are what opensearch.yml names in nodes_dn and admin_dn: keep them in step
node_dn="/O=logpipe/CN=opensearch-node"
admin_dn="/O=logpipe/CN=opensearch-admin"
if [ ! -f ca.pem ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -days 825 -subj "/O=logpipe/CN=logpipe OpenSearch CA" \
    -keyout opensearch-ca.key -out ca.pem 2>/dev/null
fi
# cert NAME SUBJECT EXT: a key (PKCS#8) and a certificate signed by the CA
cert() {
  local name=$1 subj=$2 ext=$3
  [ -f "$name.pem" ] && return 0
  openssl req -newkey rsa:3072 -nodes -subj "$subj" -keyout "$name.tmp.key" -out "$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey opensearch-ca.key -CAcreateserial \
    -days 825 -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  openssl pkcs8 -topk8 -nocrypt -in "$name.tmp.key" -out "$name.key"
  rm -f "$name.tmp.key" "$name.csr" "$name.ext" ca.srl
}
san=""
for n in "$@"; do
  case "$n" in IP:*) san+="${san:+,}$n" ;; *) san+="${san:+,}DNS:$n" ;; esac
done
cert opensearch-node "$node_dn" \
  "subjectAltName=$san
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth"
cert opensearch-admin "$admin_dn" \
  "keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
for u in opensearch-admin-password opensearch-dashboards-password es-password es-retention-password; do
  [ -f "$u" ] || head -c 24 /dev/urandom | base64 | tr -d '+/=\n' >"$u"
done
chmod 0644 ca.pem opensearch-node.pem opensearch-node.key opensearch-admin.pem opensearch-admin.key
