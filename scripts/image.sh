#!/usr/bin/env bash
# The container image (deploy/container/Dockerfile) from a wheel release.sh made:
#
#   scripts/image.sh dist/wassette-*.whl [--tag wassette:0.1.0] [--base IMAGE]
#
# The build is offline: the wheel and every dependency's wheel (pip download, from
# this machine's index) go into the build context's dist/. Without --base, the base
# is wassette-base:bookworm, made here once when Docker lacks it: `debootstrap
# --variant=minbase bookworm` from the Debian mirror (python3, python3-venv,
# ca-certificates), `docker import`ed; no image registry is needed. The tarball is
# cached in $WASSETTE_DEV_CACHE/container.
#
# Needs a running Docker engine (DOCKER_HOST) and, for the base, root and debootstrap.
# Prints the image's tag on its last line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${WASSETTE_DEV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wassette-dev}"
DEFAULT_BASE=wassette-base:bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
wheel="" tag="wassette:latest" base="$DEFAULT_BASE"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --tag) tag="$2"; shift 2 ;;
        --base) base="$2"; shift 2 ;;
        -*) echo "image.sh: unknown option $1" >&2; exit 2 ;;
        *) wheel="$1"; shift ;;
    esac
done
die() { echo "image.sh: $*" >&2; exit 1; }
[[ -f "$wheel" ]] || die "give the wheel to install (scripts/release.sh makes it)"
command -v docker >/dev/null || die "docker is needed"
export DOCKER_BUILDKIT=0  # the classic builder: no buildx plugin needed

if [[ "$base" == "$DEFAULT_BASE" ]] && ! docker image inspect "$base" >/dev/null 2>&1; then
    packages=python3,python3-venv,ca-certificates
    tarball="$CACHE/container/bookworm-minbase-$(echo "$packages $MIRROR" | sha256sum | cut -c1-12).tar"
    if [[ ! -f "$tarball" ]]; then
        command -v debootstrap >/dev/null || die "debootstrap is needed to make $base"
        [[ "$(id -u)" == 0 ]] || die "making $base with debootstrap needs root"
        rootfs="$(mktemp -d)"
        trap 'rm -rf "$rootfs"' EXIT
        echo "image.sh: debootstrap bookworm into $rootfs (once)" >&2
        debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$MIRROR" >/dev/null ||
            die "debootstrap failed"
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        mkdir -p "$(dirname "$tarball")"
        tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
        mv "$tarball.tmp" "$tarball"
    fi
    docker import "$tarball" "$base" >/dev/null
fi

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
mkdir "$context/dist"
cp "$wheel" "$context/dist/"
python3 -m pip download -q --disable-pip-version-check --only-binary=:all: --dest "$context/dist" \
    "$wheel" >&2 || die "pip download of the wheel's dependencies failed"
cp "$ROOT/deploy/container/Dockerfile" "$context/Dockerfile"
docker build -q --network none --build-arg "BASE=$base" -t "$tag" "$context" >&2
echo "$tag"
