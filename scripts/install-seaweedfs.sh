#!/usr/bin/env bash
# Installs SeaweedFS's `weed` binary (Apache-2.0), the S3 server the S3 store tests run against
# (it checks SigV4 signatures; MinIO is AGPL). Built from the Go module proxy at one pinned
# pseudo-version into .cache/bin (gitignored); skipped when that binary already exists, so only the
# first run fetches and compiles (minutes on a 2-core machine).
#
# Not `go install module/weed@version`: SeaweedFS's go.mod has a `replace` directive, which
# `go install pkg@version` refuses. So the module is fetched from the proxy (`go mod download`) and
# built as the main module, which honours its go.mod and go.sum exactly. The Go module and build
# caches live under .cache/go while building and are removed afterwards (about 1 GB otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
module="github.com/seaweedfs/seaweedfs"
version="v0.0.0-20261109003541-7506e5f91cd6"
bin=".cache/bin/weed"
stamp=".cache/bin/weed.version"
if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
  exit 0
fi
command -v go >/dev/null 2>&1 || {
  echo "install-seaweedfs: go is required (Debian: apt-get install golang)" >&2
  exit 1
}
# Go >= 1.21 fetches the toolchain SeaweedFS's go.mod asks for (GOTOOLCHAIN=auto, from the proxy).
go_minor="$(go env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')"
if [ -z "$go_minor" ] || [ "$go_minor" -lt 21 ]; then
  echo "install-seaweedfs: Go >= 1.21 is required, found $(go env GOVERSION)" >&2
  exit 1
fi
root="$(pwd)"
mkdir -p .cache/bin .cache/go
export GOMODCACHE="$root/.cache/go/mod" GOCACHE="$root/.cache/go/build" GOFLAGS="-buildvcs=false -modcacherw"
export CGO_ENABLED=0 GOTOOLCHAIN=auto
started=$(date +%s)
echo "installing seaweedfs ${version} (fetch and build, first run only)"
src="$(go mod download -json "${module}@${version}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
[ -d "$src" ] || {
  echo "install-seaweedfs: go mod download gave no source directory" >&2
  exit 1
}
(cd "$src" && go build -trimpath -ldflags "-s -w" -o "$root/$bin.tmp" ./weed)
mv "$root/$bin.tmp" "$root/$bin"
echo "$version" >"$stamp"
rm -rf .cache/go
echo "seaweedfs installed in $(($(date +%s) - started)) s"
