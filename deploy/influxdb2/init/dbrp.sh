#!/bin/bash
# InfluxDB 2.x only (the commented alternative in docker-compose.yml). Run by the
# influxdb:2 image once, after its setup made org `agrimatch` and bucket `agrimatch`:
# maps database `agrimatch` with retention policy `autogen` onto the bucket, so the
# v1 API (/write, /query with InfluxQL) that agrimatch and Grafana speak reaches it,
# and makes a v1 read-only user `grafana` for Grafana's InfluxQL datasource.
set -euo pipefail
bucket_id=$(influx bucket list --org "$DOCKER_INFLUXDB_INIT_ORG" \
  --name "$DOCKER_INFLUXDB_INIT_BUCKET" --hide-headers | cut -f1)
influx v1 dbrp create --org "$DOCKER_INFLUXDB_INIT_ORG" --db agrimatch --rp autogen \
  --bucket-id "$bucket_id" --default
influx v1 auth create --org "$DOCKER_INFLUXDB_INIT_ORG" --username grafana \
  --password "$INFLUX_V1_READ_PASSWORD" --read-bucket "$bucket_id"
