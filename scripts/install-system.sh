#!/usr/bin/env bash
# Installs the Debian packages vcdn needs when they are missing: ffmpeg (transcoder), nginx and wrk (the
# benchmark reference), chromium (the playback test drives it with playwright-core), systemd (its
# systemd-analyze scores the units in config/systemd; the release test runs it). Idempotent;
# needs root (CI and the dev machines run as root).
set -euo pipefail
need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
