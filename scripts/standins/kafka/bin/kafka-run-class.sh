#!/usr/bin/env bash
# kafka-run-class.sh of the stand-in: java with every jar of /opt/kafka/libs.
# KAFKA_HEAP_OPTS, KAFKA_OPTS and KAFKA_LOG4J_OPTS as in the official scripts.
main=$1; shift
exec java ${KAFKA_HEAP_OPTS:--Xmx256M} -XX:+UseG1GC -Djava.awt.headless=true \
  ${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=/etc/kafka/docker/tools-log4j2.properties} \
  ${KAFKA_OPTS:-} -cp "/opt/kafka/libs/*" "$main" "$@"
