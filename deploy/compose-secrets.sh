#!/bin/sh
# Creates the secrets the compose stack needs, once: deploy/secrets/postgres_password,
# deploy/secrets/grafana_admin_password and deploy/labsentinel.env (from
# labsentinel.env.example, with the same PostgreSQL password and random API secrets).
# Existing files are kept, so running it again never rotates a secret by accident.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
umask 077
mkdir -p "$here/secrets"

random() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }

if [ ! -s "$here/secrets/postgres_password" ]; then
    random > "$here/secrets/postgres_password"
fi
if [ ! -s "$here/secrets/grafana_admin_password" ]; then
    random > "$here/secrets/grafana_admin_password"
fi
if [ ! -s "$here/labsentinel.env" ]; then
    pg=$(cat "$here/secrets/postgres_password")
    sed -e "s|labsentinel:CHANGE-ME@|labsentinel:$pg@|" \
        -e "s|CHANGE-ME-api-token|$(random)|" \
        -e "s|CHANGE-ME-ack-secret|$(random)|" \
        -e "s|CHANGE-ME-salt|$(random)|" \
        -e "s|https://labsentinel.example.org|http://localhost:8080|" \
        "$here/labsentinel.env.example" > "$here/labsentinel.env"
fi
# The containers run as other users and must read their secret files.
chmod 0644 "$here/secrets/postgres_password" "$here/secrets/grafana_admin_password"
echo "secrets in $here/secrets and $here/labsentinel.env (keep them out of version control)"
