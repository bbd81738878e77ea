#!/usr/bin/env bash
# Builds the install package of vcdn from a built checkout (`make release` runs tsc first):
#   <out>/vcdn-<version>-linux-x64.tar.gz   one directory: dist/, production node_modules, the Node
#                                            runtime (bin/node), bin/vcdn, config examples, systemd units,
#                                            install.sh
#   <out>/vcdn_<version>_amd64.deb          the same tree under /opt/vcdn, units in /lib/systemd/system
# What goes in is an allow-list: package.json "files" (the list `npm pack` uses, read through
# `npm pack --dry-run`), the production dependencies of package-lock.json (`npm ci --omit=dev` from
# the npm cache, no network), and the files named below. The script fails if anything from a demo,
# a test, a benchmark, a cache or a secret got in. No compiler runs: the native modules
# (better-sqlite3, node-rdkafka) are the ones the checkout built for this very Node, copied in.
#
# usage: scripts/release/build.sh [--out DIR]      (default DIR: .cache/release)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT="$ROOT/.cache/release"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    *) echo "usage: $0 [--out DIR]" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$ROOT"

fail() { echo "release: $*" >&2; exit 1; }

NODE=$(node -p process.execPath)
VERSION=$(node -p 'require("./package.json").version')
[ "$(node -p process.platform)-$(node -p process.arch)" = linux-x64 ] || fail "builds linux-x64 only (this is $(node -p process.platform)-$(node -p process.arch))"
[ -f dist/cli/vcdn.js ] || fail "dist/ is not built: run make build (or make release)"
NAME="vcdn-$VERSION-linux-x64"
NPM_FLAGS=(--no-audit --no-fund --no-update-notifier --ignore-scripts)

WORK=$(mktemp -d "$OUT/.stage-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
STAGE="$WORK/$NAME"
mkdir -p "$STAGE/bin"

# 1. The project's own files: exactly what package.json "files" lets `npm pack` take.
npm pack --dry-run --json "${NPM_FLAGS[@]}" --offline 2>/dev/null |
  node -e 'for (const f of JSON.parse(require("fs").readFileSync(0, "utf8"))[0].files) console.log(f.path)' \
    >"$WORK/files.txt"
grep -q '^dist/cli/vcdn.js$' "$WORK/files.txt" || fail "npm pack does not list dist/cli/vcdn.js"
tar -C "$ROOT" -cf - -T "$WORK/files.txt" | tar -C "$STAGE" -xf -
cp package-lock.json "$STAGE/"
cp scripts/release/install.sh "$STAGE/install.sh"
chmod 755 "$STAGE/install.sh"

# 2. Production dependencies, as locked, from the npm cache (falls back to the registry only for a
#    package the cache lacks). Install scripts do not run: nothing is compiled or downloaded here.
(cd "$STAGE" && { npm ci --omit=dev "${NPM_FLAGS[@]}" --offline >/dev/null 2>&1 ||
  npm ci --omit=dev "${NPM_FLAGS[@]}" --prefer-offline >/dev/null; })
rm "$STAGE/package-lock.json"
NM="$STAGE/node_modules"

# 3. Native modules: the binaries the checkout built (its tests ran on them), same versions.
native() { # <package> <file relative to the package>...
  local pkg=$1
  shift
  local want have
  want=$(node -p "require('$ROOT/node_modules/$pkg/package.json').version")
  have=$(node -p "require('$NM/$pkg/package.json').version")
  [ "$want" = "$have" ] || fail "$pkg: the checkout has $want, the lockfile installs $have"
  for f in "$@"; do
    [ -f "$ROOT/node_modules/$pkg/$f" ] || fail "$pkg: $f is not built in the checkout (run make deps)"
    mkdir -p "$(dirname "$NM/$pkg/$f")"
    cp -L "$ROOT/node_modules/$pkg/$f" "$NM/$pkg/$f"
  done
}
native better-sqlite3 build/Release/better_sqlite3.node
native node-rdkafka build/Release/node-librdkafka.node build/deps/librdkafka.so.1 build/deps/librdkafka++.so.1

# 4. Prune what no running process reads: sources of the native modules, other platforms' and
#    other Node ABIs' uWebSockets.js binaries, tests, benchmarks, examples, maps, type declarations.
ABI=$("$NODE" -p process.versions.modules)
rm -rf "$NM/better-sqlite3/deps" "$NM/better-sqlite3/src" "$NM/node-rdkafka/deps" "$NM/node-rdkafka/src" \
  "$NM/hls.js/src" "$NM/uWebSockets.js/docs" "$NM/.package-lock.json"
find "$NM/uWebSockets.js/dist" -name '*.node' -delete
find "$NM/uWebSockets.js/binaries" -type f ! -name "uws_linux_x64_$ABI.node" -delete
[ -f "$NM/uWebSockets.js/binaries/uws_linux_x64_$ABI.node" ] || fail "uWebSockets.js has no binary for Node ABI $ABI"
find "$NM" -depth -type d \( -name test -o -name tests -o -name __tests__ -o -name bench -o -name benchmark \
  -o -name benchmarks -o -name example -o -name examples -o -name samples -o -name e2e -o -name fixtures -o -name .github -o -name coverage \) \
  -exec rm -rf {} +
find "$NM" -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.ts' \
  -o -name '*.tsbuildinfo' -o -name '.taprc' -o -name '*.gyp' -o -name '*.gypi' -o -name 'Makefile' -o -name '*.mk' \) -delete
find "$NM" -type f -name '*.md' ! -iname 'licen[cs]e*' -delete

# 5. The runtime and the launcher.
cp "$NODE" "$STAGE/bin/node"
chmod 755 "$STAGE/bin/node"
cp scripts/release/vcdn.sh "$STAGE/bin/vcdn"
chmod 755 "$STAGE/bin/vcdn" "$STAGE/dist/cli/vcdn.js"
echo "$VERSION" >"$STAGE/VERSION"

# 6. The allow-list, checked on what is actually staged.
(cd "$WORK" && find "$NAME" \( -type f -o -type l \) | sort) >"$WORK/list.txt"
bad=$(grep -E '(^|/)(test|tests|__tests__|testing|bench|benchmarks?|fixtures|\.tap|\.cache|\.git|\.vcdn-demo|\.prof)(/|$)|(^|/)\.env$|\.(pem|key|p12|log)$|(^|/)(typescript|tap|eslint|prettier|playwright-core|dependency-cruiser|dashjs|http-cache-tests|@types)/' "$WORK/list.txt" || true)
[ -z "$bad" ] || fail "not allowed in the package:
$bad"
grep -Ev "^$NAME/(dist/(cli|shared|origin|shield|edge|transcoder)/.+\.js|node_modules/.+|bin/(node|vcdn)|config/[a-z]+\.example\.json|config/systemd/vcdn-[a-z]+\.service|config/grafana/[a-z-]+\.json|docs/[a-z-]+\.md|([a-z]+/){0,2}README\.md|package\.json|install\.sh|VERSION)$" \
  "$WORK/list.txt" >"$WORK/stray.txt" || true
[ ! -s "$WORK/stray.txt" ] || fail "outside the allow-list: $(cat "$WORK/stray.txt")"

# 7. The tarball: one top directory, owned by root, files in a stable order.
TARBALL="$OUT/$NAME.tar.gz"
tar -C "$WORK" --owner=0 --group=0 --numeric-owner --sort=name -cf - "$NAME" | gzip -6 >"$TARBALL.tmp"
mv "$TARBALL.tmp" "$TARBALL"

# 8. The .deb: the same tree under /opt/vcdn. dpkg-deb comes with Debian (package dpkg).
if command -v dpkg-deb >/dev/null 2>&1; then
  DEB="$WORK/deb"
  mkdir -p "$DEB/opt" "$DEB/usr/bin" "$DEB/lib/systemd/system" "$DEB/DEBIAN"
  mv "$STAGE" "$DEB/opt/vcdn"
  ln -s /opt/vcdn/bin/vcdn "$DEB/usr/bin/vcdn"
  cp "$DEB"/opt/vcdn/config/systemd/vcdn-*.service "$DEB/lib/systemd/system/"
  SIZE_KB=$(du -sk --exclude=DEBIAN "$DEB" | cut -f1)
  sed -e "s/@VERSION@/$VERSION/" -e "s/@SIZE_KB@/$SIZE_KB/" scripts/release/deb/control >"$DEB/DEBIAN/control"
  for s in postinst prerm postrm; do install -m 755 "scripts/release/deb/$s" "$DEB/DEBIAN/$s"; done
  DEBFILE="$OUT/vcdn_${VERSION}_amd64.deb"
  dpkg-deb --root-owner-group -Zgzip -z6 --build "$DEB" "$DEBFILE.tmp" >/dev/null
  mv "$DEBFILE.tmp" "$DEBFILE"
  echo "release: $DEBFILE $(du -h "$DEBFILE" | cut -f1)"
else
  echo "release: dpkg-deb not found (Debian package dpkg): no .deb built" >&2
fi
echo "release: $TARBALL $(du -h "$TARBALL" | cut -f1) ($(wc -l <"$WORK/list.txt") files)"
