#!/usr/bin/env bash
# Make a Debian base image with Python 3 and its venv module, without any registry:
# debootstrap from the machine's configured Debian mirror, then `docker import`.
# Usage: docker/make-base-image.sh TAG [SUITE] [MIRROR]
set -euo pipefail
tag=${1:?usage: make-base-image.sh TAG [SUITE] [MIRROR]}
suite=${2:-trixie}
mirror=${3:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)}
mirror=${mirror:-http://deb.debian.org/debian}

command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$suite" "$root" "$mirror" >&2
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc "$root"/usr/share/man
tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "debian $suite with python3 (debootstrap)" - "$tag" >/dev/null
echo "$tag"
