#!/usr/bin/env bash
# The stand-in's entrypoint: on an empty PGDATA, initdb with POSTGRES_USER (default postgres)
# as the superuser and POSTGRES_PASSWORD (scram-sha-256 for TCP clients; required unless
# POSTGRES_HOST_AUTH_METHOD=trust), create POSTGRES_DB (default: the user's name), run the
# *.sql and *.sh files of /docker-entrypoint-initdb.d against it on a socket-only server,
# then exec the command (listening on every address, as the official image's config says).
set -euo pipefail
if [ "${1:-}" = postgres ] || [ "${1:0:1}" = - ]; then
  [ "${1:0:1}" = - ] && set -- postgres "$@"
  : "${POSTGRES_USER:=postgres}"
  : "${POSTGRES_DB:=$POSTGRES_USER}"
  : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
      echo "error: the database is uninitialized and POSTGRES_PASSWORD is not set" >&2
      echo "  set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
      exit 1
    fi
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:-}" > "$pwfile"
    initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" -E UTF8 --auth-local=trust \
      --auth-host="$POSTGRES_HOST_AUTH_METHOD" >/dev/null
    rm -f "$pwfile"
    printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >> "$PGDATA/pg_hba.conf"
    # as the official image's postgresql.conf: every address (a -c on the command line wins)
    printf "listen_addresses = '*'\nunix_socket_directories = '/var/run/postgresql'\n" \
      >> "$PGDATA/postgresql.conf"
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -k /var/run/postgresql" start >/dev/null
    psql=(psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$POSTGRES_USER" --no-psqlrc)
    if [ "$POSTGRES_DB" != postgres ]; then
      "${psql[@]}" -d postgres -q -c "CREATE DATABASE \"$POSTGRES_DB\""
    fi
    for f in /docker-entrypoint-initdb.d/*; do
      case "$f" in
        *.sql) echo "running $f"; "${psql[@]}" -d "$POSTGRES_DB" -q -f "$f" ;;
        *.sh) echo "running $f"; . "$f" ;;
      esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "PostgreSQL init process complete; ready for start up."
  fi
fi
exec "$@"
