#!/usr/bin/env bash
# Creates the log topic and the ACLs of a SASL_SSL Kafka (compose.prod.yaml's
# kafka-setup service runs it; tests/integration/test_kafka_acl.py runs it
# against a real broker with the same settings). Idempotent.
#
#   [BOOTSTRAP=kafka:9092] [TOPIC=logpipe.logs] [GROUP=logpipe-aggregator] \
#   [PARTITIONS=12] [DEAD_LETTER_TOPIC=...] [SECRETS=/run/secrets] setup.sh
#
# Principals (SASL usernames): shipper may only produce to TOPIC; aggregator
# may only consume TOPIC in GROUP (and produce to DEAD_LETTER_TOPIC when
# set); admin is the broker's super user and is used for nothing else.
# It connects as admin with admin.properties (render.sh fills it in).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/render.sh"
: "${BOOTSTRAP:=kafka:9092}" "${TOPIC:=logpipe.logs}" "${GROUP:=logpipe-aggregator}" "${PARTITIONS:=12}"
mkdir -p "$WORK"
render "$here/admin.properties" "$WORK/setup-admin.properties"
topics() {
  kafka_tool org.apache.kafka.tools.TopicCommand kafka-topics --bootstrap-server "$BOOTSTRAP" \
    --command-config "$WORK/setup-admin.properties" "$@"
}
acls() {
  kafka_tool org.apache.kafka.tools.AclCommand kafka-acls --bootstrap-server "$BOOTSTRAP" \
    --command-config "$WORK/setup-admin.properties" "$@"
}

topics --create --if-not-exists --topic "$TOPIC" --partitions "$PARTITIONS" --replication-factor "${REPLICATION:-1}"
# Write implies Describe (and, since Kafka 3.0, idempotent produce)
acls --add --allow-principal User:shipper --operation Write --topic "$TOPIC"
# Read on the topic and on the group (offsets); Read implies Describe
acls --add --allow-principal User:aggregator --operation Read --topic "$TOPIC" --group "$GROUP"
if [ -n "${DEAD_LETTER_TOPIC:-}" ]; then
  topics --create --if-not-exists --topic "$DEAD_LETTER_TOPIC" --partitions 1 --replication-factor "${REPLICATION:-1}"
  acls --add --allow-principal User:aggregator --operation Write --topic "$DEAD_LETTER_TOPIC"
fi
