#!/usr/bin/env bash
# TEST FIXTURE ONLY: builds a local stand-in for the Bento's base image `python:3.11-slim` where no image registry
# can be reached (this project's machines and CI). Users keep the real base image: nothing here is shipped.
#
# Like the official image: Debian bookworm, Python 3.11 with its headers, pip, `python` on the PATH and no PEP 668
# marker (the official image's Python is not Debian's, so `pip install` works there). Unlike it: Python is
# Debian's, and the image trusts this machine's local CA certificates (Debian's local CA directory), so a build
# inside it reaches the package registries as this machine does; uv is told to use that store too
# (UV_SYSTEM_CERTS, which uv 0.13 calls what UV_NATIVE_TLS was).
#
# Usage: tests/container/build_standin_base.sh [TAG]   (as root; needs debootstrap and a running dockerd)
set -euo pipefail
TAG="${1:-python:3.11-slim}"
MIRROR="${STANDIN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${STANDIN_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

if docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "stand-in base $TAG is already there"
  exit 0
fi

rootfs="$(mktemp -d /var/tmp/standin-rootfs.XXXXXX)"
cleanup() {
  # debootstrap mounts /proc and /sys in the target while it installs; a failed run may leave them there.
  for mount in "$rootfs/proc" "$rootfs/sys"; do
    if mountpoint -q "$mount"; then umount -R "$mount" || umount -l "$mount"; fi
  done
  rm -rf --one-file-system "$rootfs"
}
trap cleanup EXIT

debootstrap --variant=minbase \
  --include=python3.11,python3.11-dev,python3-pip,python3-venv,ca-certificates \
  bookworm "$rootfs" "$MIRROR"

cat > "$rootfs/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
SOURCES

# This machine's local CA certificates, as a local CA of the stand-in.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
fi
chroot "$rootfs" update-ca-certificates >/dev/null

# `python` and `pip` on the PATH, and no PEP 668 marker, as in the official image.
ln -sf /usr/bin/python3.11 "$rootfs/usr/local/bin/python"
ln -sf /usr/bin/python3.11 "$rootfs/usr/local/bin/python3"
ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip"
rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED

# What the image does not need (debootstrap's package cache and lists, docs), as the official slim image.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
  "$rootfs"/usr/share/man/*

tar -C "$rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV UV_SYSTEM_CERTS=1' \
  --change 'CMD ["python3"]' \
  --message "local stand-in for python:3.11-slim (test fixture)" \
  - "$TAG"
docker image ls "$TAG"
