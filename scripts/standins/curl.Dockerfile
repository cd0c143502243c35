# Stand-in for the official curlimages/curl image (scripts/docker images): Debian's curl as the
# entrypoint, run as an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --no-create-home curl_user
USER curl_user
ENTRYPOINT ["curl"]
CMD ["--help"]
