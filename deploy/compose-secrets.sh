#!/bin/sh
# Creates the secrets the compose stack needs, once: deploy/secrets/postgres_password,
# deploy/secrets/grafana_admin_password and deploy/labsentinel.env (from
# labsentinel.env.example, with the same PostgreSQL password and random API secrets), all
# mode 0600, plus deploy/.env telling compose which user may read them (SECRETS_UID).
# Kafka: a private CA (its certificate in secrets/kafka-ca.pem, its key discarded once the
# broker's certificate is signed), the broker's key and certificate in kafka.env, and the
# daemon's SCRAM password in kafka-scram.env (for kafka-setup) and labsentinel.env. Needs
# python3 and openssl.
# Existing files are kept, so running it again never rotates a secret by accident.
#
# Who reads the 0600 files: PostgreSQL's entrypoint reads its password file as root, before
# it drops to the postgres user; Grafana runs as SECRETS_UID (compose.yaml), the owner of its
# file (Grafana's image supports any uid). Run as root, the Grafana file is given to uid 472,
# the image's own user. Rootless Docker maps the container's root to you: set SECRETS_UID=0
# in deploy/.env there.
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
if [ ! -s "$here/secrets/kafka_labsentinel_password" ]; then
    random > "$here/secrets/kafka_labsentinel_password"
fi
if [ ! -s "$here/kafka.env" ] || [ ! -s "$here/secrets/kafka-ca.pem" ]; then
    work=$(mktemp -d)
    openssl req -x509 -newkey rsa:3072 -nodes -days 1825 -subj "/CN=LabSentinel compose Kafka CA" \
        -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
    # Names the clients use: kafka (containers), localhost (the host), KAFKA_EXTERNAL_HOST.
    san="DNS:kafka,DNS:localhost,IP:127.0.0.1"
    case "${KAFKA_EXTERNAL_HOST:-}" in
        "" | localhost) ;;
        *[!0-9.]*) san="$san,DNS:$KAFKA_EXTERNAL_HOST" ;;
        *) san="$san,IP:$KAFKA_EXTERNAL_HOST" ;;
    esac
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" > "$work/broker.ext"
    openssl req -newkey rsa:3072 -nodes -subj "/CN=kafka" \
        -keyout "$work/broker.key" -out "$work/broker.csr" 2>/dev/null
    openssl x509 -req -in "$work/broker.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
        -CAcreateserial -days 825 -extfile "$work/broker.ext" -out "$work/broker.pem" 2>/dev/null
    # An env file holds one line per variable: Kafka reads PEM with its line breaks as spaces.
    oneline() { tr '\n' ' ' < "$1" | sed 's/ *$//'; }
    {
        echo "# The Kafka broker's TLS key and certificate (compose.yaml); written by compose-secrets.sh."
        echo "KAFKA_SSL_KEYSTORE_KEY=$(oneline "$work/broker.key")"
        echo "KAFKA_SSL_KEYSTORE_CERTIFICATE_CHAIN=$(oneline "$work/broker.pem")"
    } > "$here/kafka.env"
    cp "$work/ca.pem" "$here/secrets/kafka-ca.pem"
    rm -rf "$work"
fi
if [ ! -s "$here/kafka-scram.env" ]; then
    echo "SCRAM_LABSENTINEL_PASSWORD=$(cat "$here/secrets/kafka_labsentinel_password")" \
        > "$here/kafka-scram.env"
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
if ! grep -q '^LABSENTINEL_KAFKA_SASL_PASSWORD=' "$here/labsentinel.env"; then
    echo "LABSENTINEL_KAFKA_SASL_PASSWORD=$(cat "$here/secrets/kafka_labsentinel_password")" \
        >> "$here/labsentinel.env"
fi
# Files made by an earlier version of this script were 0644: tighten them too.
chmod 0600 "$here/secrets/postgres_password" "$here/secrets/grafana_admin_password" \
    "$here/secrets/kafka_labsentinel_password" "$here/labsentinel.env" "$here/kafka.env" \
    "$here/kafka-scram.env"
# A certificate, not a secret: the daemon's user in its container must read it.
chmod 0644 "$here/secrets/kafka-ca.pem"
if [ ! -s "$here/.env" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        chown 472:0 "$here/secrets/grafana_admin_password"
        echo "SECRETS_UID=472" > "$here/.env"
    else
        echo "SECRETS_UID=$(id -u)" > "$here/.env"
    fi
fi
echo "secrets in $here/secrets and $here/labsentinel.env (mode 0600; keep them out of version control)"
