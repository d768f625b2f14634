#!/usr/bin/env bash
# Installs the Debian packages the end-to-end tests drive for real: the CNCF distribution
# registry, skopeo to push to it, busybox-static to build images from (no pulls), and a
# Docker Engine (docker.io, containerd, runc) to deploy to, and Chromium (with a font) and
# ChromeDriver to test the GraphiQL page and the dashboard in, and HAProxy to shift canary traffic through.
# Idempotent: does nothing when they are present.
set -euo pipefail

packages=(docker-registry skopeo busybox-static docker.io containerd runc chromium chromium-driver fonts-dejavu-core haproxy)
missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io containerd runc)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
dpkg -s fonts-dejavu-core >/dev/null 2>&1 || missing+=(fonts-dejavu-core)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "gantry: installing ${missing[*]}"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "gantry: run as root or install: ${packages[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
