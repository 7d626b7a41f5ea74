#!/usr/bin/env bash
# Makes the Kafka secrets compose.prod.yaml mounts (and the test broker
# uses): a CA, the broker's key and certificate for NAMES (its hostnames,
# and IP addresses as IP:a.b.c.d), one random password per user.
#
#   deploy/kafka/make-secrets.sh DIR [NAMES...]      (default NAMES: kafka)
#
# Writes into DIR (0700; files 0600 but kafka-server.pem, kafka-ca.pem and
# kafka-users.properties 0644, which the broker's user must read in its
# container): kafka-ca.pem, kafka-ca.key (keep it offline), kafka-server.pem
# (PKCS#8 key + certificate), kafka-users.properties (admin=, shipper=,
# aggregator=) and kafka-<user>-password for each user. Existing files are
# kept, so it can be run again to add what is missing.
set -euo pipefail
dir=${1:?usage: make-secrets.sh DIR [NAMES...]}
shift
[ $# -gt 0 ] || set -- kafka
umask 077
mkdir -p "$dir"
cd "$dir"
if [ ! -f kafka-ca.pem ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -days 825 -subj "/CN=logpipe Kafka CA" \
    -keyout kafka-ca.key -out kafka-ca.pem 2>/dev/null
fi
if [ ! -f kafka-server.pem ]; then
  san=""
  for n in "$@"; do
    case "$n" in IP:*) san+="${san:+,}$n" ;; *) san+="${san:+,}DNS:$n" ;; esac
  done
  openssl req -newkey rsa:3072 -nodes -subj "/CN=${1#IP:}" -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" >server.ext
  openssl x509 -req -in server.csr -CA kafka-ca.pem -CAkey kafka-ca.key -CAcreateserial \
    -days 825 -extfile server.ext -out server.crt 2>/dev/null
  openssl pkcs8 -topk8 -nocrypt -in server.key -out server.p8
  cat server.p8 server.crt >kafka-server.pem
  rm -f server.key server.p8 server.csr server.crt server.ext kafka-ca.srl
fi
if [ ! -f kafka-users.properties ]; then
  for u in admin shipper aggregator; do
    p=$(head -c 24 /dev/urandom | base64 | tr -d '+/=\n')
    printf '%s=%s\n' "$u" "$p" >>kafka-users.properties
    printf '%s' "$p" >"kafka-$u-password"
  done
fi
chmod 0644 kafka-server.pem kafka-ca.pem kafka-users.properties
