#!/usr/bin/env bash
# The stand-in's entrypoint, after Debezium's connect image: the variables BOOTSTRAP_SERVERS,
# GROUP_ID, CONFIG_STORAGE_TOPIC, OFFSET_STORAGE_TOPIC, STATUS_STORAGE_TOPIC, KEY_CONVERTER,
# VALUE_CONVERTER, ADVERTISED_HOST_NAME, ADVERTISED_PORT, OFFSET_FLUSH_INTERVAL_MS and
# HEAP_OPTS set the worker's properties of those names; every CONNECT_<NAME> variable becomes
# the property <name> (lower case, "_" -> "."); ENABLE_APICURIO_CONVERTERS=true links
# Apicurio's converter into every plugin folder. `start` runs the worker in distributed mode.
set -euo pipefail
: "${BOOTSTRAP_SERVERS:=0.0.0.0:9092}"
: "${HOST_NAME:=$(hostname -I 2>/dev/null | awk '{print $1}')}"
: "${HOST_NAME:=127.0.0.1}"
: "${REST_PORT:=8083}"
: "${REST_HOST_NAME:=$HOST_NAME}"
: "${ADVERTISED_PORT:=8083}"
: "${ADVERTISED_HOST_NAME:=$HOST_NAME}"
: "${GROUP_ID:=1}"
: "${OFFSET_FLUSH_INTERVAL_MS:=60000}"
: "${OFFSET_FLUSH_TIMEOUT_MS:=5000}"
: "${SHUTDOWN_TIMEOUT:=10000}"
: "${KEY_CONVERTER:=org.apache.kafka.connect.json.JsonConverter}"
: "${VALUE_CONVERTER:=org.apache.kafka.connect.json.JsonConverter}"
: "${ENABLE_APICURIO_CONVERTERS:=false}"
export CONNECT_REST_ADVERTISED_PORT=$ADVERTISED_PORT \
  CONNECT_REST_ADVERTISED_HOST_NAME=$ADVERTISED_HOST_NAME \
  CONNECT_REST_PORT=$REST_PORT \
  CONNECT_REST_HOST_NAME=$REST_HOST_NAME \
  CONNECT_BOOTSTRAP_SERVERS=$BOOTSTRAP_SERVERS \
  CONNECT_GROUP_ID=$GROUP_ID \
  CONNECT_CONFIG_STORAGE_TOPIC=${CONFIG_STORAGE_TOPIC:-} \
  CONNECT_OFFSET_STORAGE_TOPIC=${OFFSET_STORAGE_TOPIC:-} \
  CONNECT_KEY_CONVERTER=$KEY_CONVERTER \
  CONNECT_VALUE_CONVERTER=$VALUE_CONVERTER \
  CONNECT_TASK_SHUTDOWN_GRACEFUL_TIMEOUT_MS=$SHUTDOWN_TIMEOUT \
  CONNECT_OFFSET_FLUSH_INTERVAL_MS=$OFFSET_FLUSH_INTERVAL_MS \
  CONNECT_OFFSET_FLUSH_TIMEOUT_MS=$OFFSET_FLUSH_TIMEOUT_MS
[ -z "${STATUS_STORAGE_TOPIC:-}" ] || export CONNECT_STATUS_STORAGE_TOPIC=$STATUS_STORAGE_TOPIC
[ -z "${HEAP_OPTS:-}" ] || export KAFKA_HEAP_OPTS=$HEAP_OPTS

# Apicurio's converter beside every connector, or not at all
for plugin in "$KAFKA_CONNECT_PLUGINS_DIR"/*/; do
  if [ "$ENABLE_APICURIO_CONVERTERS" = true ]; then
    ln -snf "$EXTERNAL_LIBS_DIR"/apicurio/* "$plugin"
  else
    find "$plugin" -maxdepth 1 -lname "$EXTERNAL_LIBS_DIR/apicurio/*" -delete
  fi
done
[ "$ENABLE_APICURIO_CONVERTERS" != true ] || echo "Apicurio connectors enabled!"

if [ "${1:-}" = start ]; then
  for v in CONNECT_CONFIG_STORAGE_TOPIC CONNECT_OFFSET_STORAGE_TOPIC; do
    if [ -z "${!v}" ]; then
      echo "The ${v#CONNECT_} variable must be set (the worker's internal topics)." >&2
      exit 1
    fi
  done
  cp -rn "$KAFKA_HOME"/config.orig/* "$KAFKA_HOME/config/"
  props=$KAFKA_HOME/config/connect-distributed.properties
  env | grep -E '^CONNECT_[A-Z0-9_]+=' | while IFS='=' read -r name value; do
    key=$(printf '%s' "${name#CONNECT_}" | tr 'A-Z' 'a-z' | tr _ .)
    grep -v "^$key=" "$props" > "$props.tmp" || true
    printf '%s=%s\n' "$key" "$value" >> "$props.tmp"
    mv "$props.tmp" "$props"
    case "$name" in *PASSWORD*|*JAAS*) value='[hidden]' ;; esac
    echo "--- Setting property from $name: $key=$value"
  done
  export KAFKA_LOG4J_OPTS="-Dlog4j2.configurationFile=$KAFKA_HOME/config/log4j2.properties"
  exec "$KAFKA_HOME/bin/connect-distributed.sh" "$props"
fi
exec "$@"
