# shellcheck shell=bash
# Sourced by broker.sh and setup.sh: render FILE into OUT, filling in the
# @NAME@ values of deploy/kafka/*.properties from the environment (Compose's
# values by default), and run Kafka's tools from /opt/kafka/bin (the
# apache/kafka image) or, with KAFKA_LIBS set to a directory of Kafka's jars,
# the same classes with java.
: "${SECRETS:=/run/secrets}" "${DATA:=/var/lib/kafka/data}" "${PORT:=9092}" "${CONTROLLER_PORT:=9093}"
: "${LISTEN_HOST:=}" "${ADVERTISED_HOST:=kafka}" "${WORK:=/tmp/logpipe-kafka}"
render() {
  sed -e "s|@SECRETS@|$SECRETS|g" -e "s|@DATA@|$DATA|g" -e "s|@PORT@|$PORT|g" \
      -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" -e "s|@LISTEN_HOST@|$LISTEN_HOST|g" \
      -e "s|@ADVERTISED_HOST@|$ADVERTISED_HOST|g" "$1" >"$2"
}
# kafka_tool CLASS SCRIPT ARGS...: org.apache.kafka.tools.CLASS or bin/SCRIPT.sh
kafka_tool() {
  local class=$1 script=$2
  shift 2
  if [ -n "${KAFKA_LIBS:-}" ]; then
    "${JAVA:-java}" -Xmx256m -cp "$KAFKA_LIBS/*" "$class" "$@"
  else
    "/opt/kafka/bin/$script.sh" "$@"
  fi
}
