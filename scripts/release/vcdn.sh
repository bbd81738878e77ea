#!/bin/sh
# bin/vcdn of an installed vcdn package: runs the CLI on the Node runtime shipped beside it, so the
# machine's own Node (if any) and PATH play no part. Found through any symlink (/usr/bin/vcdn).
set -e
root=$(dirname "$(dirname "$(readlink -f "$0")")")
if [ "${1-}" = --version ] || [ "${1-}" = -v ]; then
  echo "vcdn $(cat "$root/VERSION") (node $("$root/bin/node" --version))"
  exit 0
fi
exec "$root/bin/node" "$root/dist/cli/vcdn.js" "$@"
