# Stand-in for the official apicurio/apicurio-registry image (scripts/docker images): the same
# Quarkus distribution from Maven Central, on the host's JDK 21+, laid out like the official
# image (/deployments, port 8080, an unprivileged user).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY jdk /opt/java/openjdk
COPY deployments /deployments
ENV JAVA_HOME=/opt/java/openjdk \
    PATH=/opt/java/openjdk/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    QUARKUS_HTTP_HOST=0.0.0.0 \
    JAVA_OPTS_APPEND="-Xms64m -Xmx384m -XX:+UseSerialGC"
EXPOSE 8080
USER 1001
WORKDIR /deployments
CMD ["sh", "-c", "exec java $JAVA_OPTS_APPEND -Djava.util.logging.manager=org.jboss.logmanager.LogManager -jar /deployments/quarkus-run.jar"]
