#!/usr/bin/env bash
# Kafka's bin/connect-distributed.sh, reduced to what the stand-in needs.
exec java ${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m} -XX:+UseSerialGC -Djava.awt.headless=true \
  ${KAFKA_LOG4J_OPTS:-} ${KAFKA_OPTS:-} -cp "$KAFKA_HOME/libs/*" \
  org.apache.kafka.connect.cli.ConnectDistributed "$@"
