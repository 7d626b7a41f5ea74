#!/usr/bin/env bash
# Creates (or updates: it can run again, e.g. after a password rotation) the
# OpenSearch users logpipe's deployment logs in as, through the security
# plugin's REST API authenticated with the admin client certificate, so no
# password hash is ever written into a file:
#   admin              all_access (people, and OpenSearch Dashboards' login)
#   dashboards         kibana_server (the Dashboards server itself)
#   logpipe            logpipe_writer (logpipe-aggregator's elasticsearch output)
#   logpipe-retention  logpipe_retention (logpipe-retention's index retention)
# Roles and their mapping are deploy/opensearch/security/, loaded when the
# security index is first created.
#
# Environment: OPENSEARCH_URL (default https://opensearch:9200), SECRETS (the
# directory of make-secrets.sh's files, default /run/secrets), WAIT_SECONDS
# (how long OpenSearch may take to answer, default 300).
# The compose.prod.yaml service opensearch-setup runs it once per `up`;
# tests/integration/test_opensearch_security.py runs it against a real node.
set -euo pipefail
url=${OPENSEARCH_URL:-https://opensearch:9200}
secrets=${SECRETS:-/run/secrets}
wait_s=${WAIT_SECONDS:-300}
answer=$(mktemp)
trap 'rm -f "$answer"' EXIT
tls=(--cacert "$secrets/ca.pem" --cert "$secrets/opensearch-admin.pem" --key "$secrets/opensearch-admin.key")

# ready when the security index answers (the node answers cluster health
# earlier, before the plugin has loaded deploy/opensearch/security/)
for ((i = 0; ; i++)); do
  if curl -fsS -m 5 "${tls[@]}" "$url/_plugins/_security/api/internalusers" >/dev/null 2>&1; then
    break
  fi
  [ "$i" -lt "$wait_s" ] || { echo "setup: $url did not answer in ${wait_s}s" >&2; exit 1; }
  sleep 1
done

# json_string FILE: the file's content as a JSON string (passwords are base64
# without +/= from make-secrets.sh, but a hand-made one may hold anything)
json_string() {
  local s
  s=$(cat "$1")
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

put_user() {
  local user=$1 file=$2 code
  [ -s "$secrets/$file" ] || { echo "setup: $secrets/$file is missing or empty" >&2; exit 1; }
  code=$(printf '{"password":%s,"description":"made by deploy/opensearch/setup.sh"}' \
      "$(json_string "$secrets/$file")" |
    curl -sS -m 30 "${tls[@]}" -o "$answer" -w '%{http_code}' -XPUT \
      -H 'Content-Type: application/json' --data-binary @- \
      "$url/_plugins/_security/api/internalusers/$user")
  case "$code" in
    200 | 201) echo "setup: user $user ready" ;;
    *) echo "setup: user $user: HTTP $code: $(cat "$answer")" >&2; exit 1 ;;
  esac
}

put_user admin opensearch-admin-password
put_user dashboards opensearch-dashboards-password
put_user logpipe es-password
put_user logpipe-retention es-retention-password
