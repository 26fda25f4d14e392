#!/usr/bin/env bash
# Benchmark: `funnel sync` of N changed contacts through HTTP, from a laptop's
# SQLite workspace to `funnel daemon` on the real PostgreSQL, with the release
# binary: what a team member's sync costs end to end (the client's feed, JSON
# over loopback, the daemon's API, its store). The in-process benchmark
# (`cargo bench --bench sync_contacts`) measures the stores alone.
#
#   cargo build --release   (or any build: FUNNEL_BIN=path/to/funnel)
#   bash benches/sync_http.sh [N]        (default 1000000)
#
# The laptop's contacts are made by SQL (a first sync stamps everything the
# store held), synced once, then every name is changed and synced again: the
# second sync is "N changed contacts". Figures are in docs/sync.md.
set -euo pipefail
n=${1:-1000000}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${FUNNEL_BIN:-$root/target/release/funnel}
pg=${FUNNEL_TEST_PG:-postgres://root@127.0.0.1:5432/test}
port=${FUNNEL_BENCH_PORT:-17878}
schema=bench_http_$$
work=$(mktemp -d)
hub_url="$pg?options=-c%20search_path%3D$schema"
daemon=""
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  psql -q -X "$pg" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

for side in team laptop; do
  mkdir -p "$work/$side/sites"
  for part in workflows templates sites/demo contacts campaigns; do
    cp -r "$root/$part" "$work/$side/$part"
  done
  cp "$root/funnel.yaml" "$work/$side/"
done
team() { (cd "$work/team" && FUNNEL_STORE_URL="$hub_url" "$bin" "$@"); }
mine() { (cd "$work/laptop" && env -u FUNNEL_STORE_URL FUNNEL_CONFIG_DIR="$work/config" "$bin" "$@"); }

token=$(team tokens create --name bench --role editor 2>/dev/null)
(cd "$work/team" && FUNNEL_STORE_URL="$hub_url" exec "$bin" daemon --bind "127.0.0.1:$port" --no-watch \
  >"$work/daemon.log" 2>&1) &
daemon=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
(cd "$work/laptop" && env -u FUNNEL_STORE_URL FUNNEL_CONFIG_DIR="$work/config" FUNNEL_TOKEN="$token" \
  "$bin" login team --remote "http://127.0.0.1:$port" >/dev/null)

mine contacts list --limit 1 >/dev/null # makes the laptop's store
db="$work/laptop/.funnel/funnel.db"
t=$(date +%s.%N)
sqlite3 "$db" "WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < $n)
  INSERT INTO contacts (uid, email, name, status, created_at, updated_at)
  SELECT 'c' || i, 'p' || i || '@example.org', 'Person ' || i, 'active', 1, 1 FROM seq;"
printf "made %s contacts on the laptop in %.1f s\n" "$n" "$(echo "$(date +%s.%N) - $t" | bc)"

timed() {
  local what=$1 t0
  t0=$(date +%s.%N)
  mine sync >/dev/null
  printf "%s: %.1f s\n" "$what" "$(echo "$(date +%s.%N) - $t0" | bc)"
}
timed "first sync, every contact new on the hub"
sqlite3 "$db" "UPDATE contacts SET name = name || ' (changed)'"
timed "second sync, $n changed contacts"
there=$(psql -X -At "$pg" -c "SELECT count(*) FROM $schema.contacts WHERE name LIKE '%(changed)'")
echo "the hub holds $there changed contacts"
[ "$there" = "$n" ]
