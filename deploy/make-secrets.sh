#!/usr/bin/env bash
# Makes deploy/secrets/*.env for docker-compose.yml: a random password per user and
# the env files that carry them (deploy/secrets/README.md lists each and who reads
# it). Run once on the host, before the first `docker compose up`. A file that exists
# is kept: running it again never changes a password a volume already holds (to
# rotate one, docs/deploy.md).
#
# The broker's service users (ingest, publisher for the API, operator, and the demo's
# simulator) keep their passwords where `agrimatch devices provision --out
# deploy/broker` (compose's broker-users) looks for them,
# deploy/broker/services/USER.password: made here if absent, reused if provision made
# them first, so the broker's password file and the services' URLs always agree.
#
#   deploy/make-secrets.sh [SECRETS_DIR [BROKER_DIR]]
#       defaults: deploy/secrets and deploy/broker next to this script
set -euo pipefail
umask 077  # the files are readable by their owner only

here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:-$here/secrets}"
broker="${2:-$here/broker}"
mkdir -p "$dir" "$broker/services"

# 32 characters of [A-Za-z0-9]: no character a URL, a shell or an env file would
# need to quote.
random() {
  local out=""
  while ((${#out} < 32)); do
    out+="$(head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
  done
  printf '%s' "${out:0:32}"
}

# Each password is made once and kept in its own file, so the env files that share
# one (InfluxDB's and agrimatch's view of user agrimatch) always agree.
password() {
  local file="$dir/.pw-$1"
  [[ -s "$file" ]] || random >"$file"
  cat "$file"
}

write() {  # write FILE, content on stdin; an existing file is kept
  local file="$dir/$1"
  if [[ -e "$file" ]]; then
    cat >/dev/null
    echo "kept    $file"
  else
    cat >"$file"
    echo "made    $file"
  fi
}

# A broker service user's password, in the file `agrimatch devices provision` reads.
service_password() {
  local file="$broker/services/$1.password"
  if [[ ! -s "$file" ]]; then
    random >"$file"
    echo >>"$file"
  fi
  head -n 1 "$file" | tr -d '[:space:]'
}

pg=$(password postgres)
pg_grafana=$(password postgres-grafana)
influx_admin=$(password influx-admin)
influx_agrimatch=$(password influx-agrimatch)
influx_grafana=$(password influx-grafana)
mqtt_ingest=$(service_password ingest)
mqtt_publisher=$(service_password publisher)
service_password operator >/dev/null  # who reads dead letters and status
# Used only when provision is given a scenario (DEMO_SCENARIO: the demo profile).
mqtt_sim=$(service_password simulator)

write postgres.env <<EOF
POSTGRES_PASSWORD=$pg
GRAFANA_PG_PASSWORD=$pg_grafana
EOF
write influxdb.env <<EOF
INFLUXDB_ADMIN_PASSWORD=$influx_admin
INFLUXDB_USER_PASSWORD=$influx_agrimatch
INFLUXDB_READ_USER_PASSWORD=$influx_grafana
EOF
write influxdb2.env <<EOF
DOCKER_INFLUXDB_INIT_PASSWORD=$influx_admin
DOCKER_INFLUXDB_INIT_ADMIN_TOKEN=$(password influx2-token)
INFLUX_V1_READ_PASSWORD=$influx_grafana
EOF
write agrimatch-influx.env <<EOF
AGRIMATCH_INFLUX_PASSWORD=$influx_agrimatch
EOF
write agrimatch-registry.env <<EOF
AGRIMATCH_DATABASE_URL=postgresql://agrimatch:$pg@postgres:5432/agrimatch
EOF
write agrimatch-api.env <<EOF
AGRIMATCH_API_KEY_PEPPER=$(password api-key-pepper)
EOF
write mqtt-ingest.env <<EOF
AGRIMATCH_MQTT_URL=mqtt://ingest:$mqtt_ingest@mosquitto:1883
EOF
write mqtt-api.env <<EOF
AGRIMATCH_MQTT_URL=mqtt://publisher:$mqtt_publisher@mosquitto:1883
EOF
write mqtt-sim.env <<EOF
AGRIMATCH_MQTT_URL=mqtt://simulator:$mqtt_sim@mosquitto:1883
EOF
write grafana.env <<EOF
GF_SECURITY_ADMIN_PASSWORD=$(password grafana-admin)
INFLUX_READ_PASSWORD=$influx_grafana
REGISTRY_READ_PASSWORD=$pg_grafana
EOF

echo "next: docker compose up -d (broker-users provisions $broker; docs/deploy.md)"
