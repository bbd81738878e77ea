#!/bin/sh
# Installs vcdn from the unpacked release tarball (run it from inside that directory, as root):
#   /opt/vcdn-<version>/        this tree; /opt/vcdn points at it (an upgrade switches the link)
#   /usr/local/bin/vcdn         the command
#   /etc/systemd/system/        vcdn-origin, vcdn-shield, vcdn-edge, vcdn-transcoder (sandboxed, user vcdn)
#   /etc/vcdn/                  root:vcdn 0750, for <tier>.json (start from /opt/vcdn/config/*.example.json)
# and creates the system user and group vcdn. Starts nothing: configure a tier, then
# `systemctl enable --now vcdn-<tier>`. The .deb runs `install.sh --configure-host` after unpacking.
#
# usage: install.sh [--root DIR]       install below DIR instead of / (no user, no systemctl: for
#                                      building images and for tests)
#        install.sh --configure-host   only the user, /etc/vcdn and systemd's reload (the .deb's postinst)
set -eu

src=$(dirname "$(readlink -f "$0")")
root=
only_host=no
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=$(readlink -f "$2"); shift 2 ;;
    --configure-host) only_host=yes; shift ;;
    *) echo "usage: $0 [--root DIR | --configure-host]" >&2; exit 2 ;;
  esac
done

configure_host() {
  if ! getent group vcdn >/dev/null; then groupadd --system vcdn; fi
  if ! getent passwd vcdn >/dev/null; then
    useradd --system --gid vcdn --home-dir /var/lib/vcdn --no-create-home --shell /usr/sbin/nologin \
      --comment "vcdn video CDN" vcdn
  fi
  # Configs hold secrets: readable by the service user's group, writable by root only.
  install -d -m 0750 -o root -g vcdn /etc/vcdn
  if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
}

if [ "$only_host" = yes ]; then
  configure_host
  exit 0
fi

version=$(cat "$src/VERSION")
dest="$root/opt/vcdn-$version"
if [ "$(readlink -f "$src")" != "$(readlink -f "$dest" 2>/dev/null || true)" ]; then
  rm -rf "$dest.new"
  mkdir -p "$root/opt"
  cp -a "$src" "$dest.new"
  rm -rf "$dest"
  mv "$dest.new" "$dest"
fi
# Relative links, so a tree installed with --root stays valid wherever it is mounted.
ln -sfn "vcdn-$version" "$root/opt/vcdn"
mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system"
ln -sfn ../../../opt/vcdn/bin/vcdn "$root/usr/local/bin/vcdn"
for unit in "$dest"/config/systemd/vcdn-*.service; do
  install -m 0644 "$unit" "$root/etc/systemd/system/"
done

if [ -z "$root" ]; then
  configure_host
else
  install -d -m 0750 "$root/etc/vcdn"
fi
echo "vcdn $version installed in $root/opt/vcdn; next: $root/etc/vcdn/<tier>.json, then systemctl enable --now vcdn-<tier>"
