#!/bin/sh
# Run by the postgres image once, when it creates the database: a read-only role for
# Grafana's "job runs" panels. The registry's tables do not exist yet (agrimatch
# migrates them when the API first starts), so the role gets SELECT on every table
# the owner creates from now on. The password comes from GRAFANA_PG_PASSWORD
# (deploy/secrets/postgres.env), passed to psql as a variable, never in this file.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v reader_password="$GRAFANA_PG_PASSWORD" -v owner="$POSTGRES_USER" \
  -v db="$POSTGRES_DB" <<'SQL'
CREATE ROLE grafana_reader LOGIN PASSWORD :'reader_password';
GRANT CONNECT ON DATABASE :"db" TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
  GRANT SELECT ON TABLES TO grafana_reader;
-- A dashboard query must never hold the registry up: bounded statements.
ALTER ROLE grafana_reader SET statement_timeout = '10s';
ALTER ROLE grafana_reader SET default_transaction_read_only = on;
SQL
