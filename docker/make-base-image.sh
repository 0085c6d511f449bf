#!/usr/bin/env bash
# Make a Debian base image, without any registry: debootstrap from the machine's configured
# Debian mirror, then `docker import`. PACKAGES (comma-separated) are installed in it: by default
# Python 3 and its venv module (the reference's and the second executor's base); the Node.js
# executor's base is made with PACKAGES=nodejs,ca-certificates.
# Usage: docker/make-base-image.sh TAG [SUITE] [MIRROR] [PACKAGES]
set -euo pipefail
tag=${1:?usage: make-base-image.sh TAG [SUITE] [MIRROR] [PACKAGES]}
suite=${2:-trixie}
mirror=${3:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)}
mirror=${mirror:-http://deb.debian.org/debian}
packages=${4:-python3,python3-venv,ca-certificates}

command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >&2
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc "$root"/usr/share/man
tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --message "debian $suite with $packages (debootstrap)" - "$tag" >/dev/null
echo "$tag"
