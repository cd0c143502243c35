#!/usr/bin/env bash
# kafka-server-start.sh of the stand-in: the broker with the given properties file.
export KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms64m -Xmx512m}
export KAFKA_LOG4J_OPTS=${KAFKA_LOG4J_OPTS:--Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties -Dkafka.logs.dir=/tmp}
exec /opt/kafka/bin/kafka-run-class.sh kafka.Kafka "$@"
