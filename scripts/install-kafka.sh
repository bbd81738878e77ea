#!/usr/bin/env bash
# Fetches the Apache Kafka broker's jars from Maven Central (scripts/kafka/pom.xml) into
# .cache/kafka/libs, for the tests that run a real single-node KRaft broker on loopback
# (shared/testing/kafka-broker.ts starts and stops it). Idempotent: a second run with the same pom
# fetches nothing. Needs Java 17+ and Maven.
set -euo pipefail
cd "$(dirname "$0")/.."
pom=scripts/kafka/pom.xml
dest=.cache/kafka
stamp="$dest/libs/.pom.sha256"
want=$(sha256sum "$pom" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
command -v java >/dev/null 2>&1 || { echo "install-kafka: java (17+) is missing" >&2; exit 1; }
command -v mvn >/dev/null 2>&1 || { echo "install-kafka: mvn is missing" >&2; exit 1; }
echo "install-kafka: fetching the broker's jars from Maven Central"
rm -rf "$dest/libs.tmp"
mkdir -p "$dest"
# The Maven repository stays inside the cache too, so nothing outside the clone is relied on.
# Maven's own output goes to a log, shown only when it fails.
if ! mvn -q -B -Dstyle.color=never --no-transfer-progress -f "$pom" -Dmaven.repo.local="$PWD/$dest/m2" \
  dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$PWD/$dest/libs.tmp" >"$dest/mvn.log" 2>&1; then
  cat "$dest/mvn.log" >&2
  echo "install-kafka: mvn failed (log above)" >&2
  exit 1
fi
rm -rf "$dest/libs"
mv "$dest/libs.tmp" "$dest/libs"
echo "$want" >"$stamp"
