#!/usr/bin/env bash
# Starts the broker of server.properties (compose.prod.yaml's kafka
# entrypoint; tests/integration/test_kafka_acl.py with loopback values):
# renders it and admin.properties into $WORK, formats the storage on first
# start (a random cluster id, or CLUSTER_ID), then runs Kafka in the foreground.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/render.sh"
mkdir -p "$WORK" "$DATA"
render "$here/server.properties" "$WORK/server.properties"
render "$here/admin.properties" "$WORK/admin.properties"
if [ ! -f "$DATA/meta.properties" ]; then
  id=${CLUSTER_ID:-$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')}
  kafka_tool kafka.tools.StorageTool kafka-storage format -t "$id" -c "$WORK/server.properties"
fi
if [ -n "${KAFKA_LIBS:-}" ]; then
  exec "${JAVA:-java}" ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} ${KAFKA_JAVA_OPTS:-} -cp "$KAFKA_LIBS/*" \
    kafka.Kafka "$WORK/server.properties"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$WORK/server.properties"
