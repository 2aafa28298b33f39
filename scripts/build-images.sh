#!/usr/bin/env bash
# Builds the sandbox images when absent. Tries the plain Dockerfile first only when a registry
# is reachable; otherwise (the usual case on an offline machine) builds from what Debian offers:
#   minimal: FROM scratch + the static busybox of Debian's busybox-static
#   default: a debootstrap'd Debian rootfs, imported with `docker import`
# Set TROUPE_REBUILD_IMAGES=1 to rebuild. Says which path it took.
set -euo pipefail
cd "$(dirname "$0")/.."
MINIMAL="${TROUPE_MINIMAL_IMAGE:-troupe-sandbox-minimal:latest}"
DEFAULT="${TROUPE_DEFAULT_IMAGE:-troupe-sandbox-default:latest}"
STATE="${TROUPE_STATE_DIR:-$PWD/.troupe}"
mkdir -p "$STATE"
say() { printf '\033[1m[images]\033[0m %s\n' "$*"; }
# Bump when an image's content changes, so machines that have the old one rebuild it.
IMAGE_VERSION=2
have() {
  [ "${TROUPE_REBUILD_IMAGES:-0}" != 1 ] || return 1
  [ "$(docker image inspect -f '{{ index .Config.Labels "troupe.image.version" }}' "$1" 2>/dev/null)" = "$IMAGE_VERSION" ]
}
registry_reachable() { timeout 5 docker pull -q busybox:1.36 >/dev/null 2>&1; }
apt_ensure() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} = 0 ] && return 0
  say "installing ${missing[*]} from Debian's packages"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

build_minimal() {
  if have "$MINIMAL"; then say "$MINIMAL present"; return; fi
  if [ "${TROUPE_IMAGES_OFFLINE:-1}" != 1 ] && registry_reachable; then
    say "building $MINIMAL from sandbox-images/minimal/Dockerfile (registry reachable)"
    docker build -q --label "troupe.image.version=$IMAGE_VERSION" -t "$MINIMAL" sandbox-images/minimal
    return
  fi
  say "building $MINIMAL offline: FROM scratch + Debian's busybox-static"
  apt_ensure busybox-static
  local ctx="$STATE/build-minimal"
  rm -rf "$ctx" && mkdir -p "$ctx/rootfs/etc" "$ctx/workspace" "$ctx/rootfs/tmp" "$ctx/rootfs/root"
  cp /bin/busybox "$ctx/busybox"
  printf 'root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/workspace:/bin/sh\n' >"$ctx/rootfs/etc/passwd"
  printf 'root:x:0:\nagent:x:1000:\n' >"$ctx/rootfs/etc/group"
  chmod 1777 "$ctx/rootfs/tmp"
  touch "$ctx/workspace/.keep"
  cp sandbox-images/minimal/Dockerfile.offline "$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q --label "troupe.image.version=$IMAGE_VERSION" -t "$MINIMAL" "$ctx" >/dev/null
  say "$MINIMAL built"
}

build_default() {
  if have "$DEFAULT"; then say "$DEFAULT present"; return; fi
  if [ "${TROUPE_IMAGES_OFFLINE:-1}" != 1 ] && registry_reachable; then
    say "building $DEFAULT from sandbox-images/default/Dockerfile (registry reachable)"
    docker build --label "troupe.image.version=$IMAGE_VERSION" -t "$DEFAULT" sandbox-images/default
    return
  fi
  if [ "$(docker image inspect -f '{{ index .Config.Labels "troupe.image.version" }}' troupe-sandbox-default-rootfs:latest 2>/dev/null)" != "$IMAGE_VERSION" ]; then
    apt_ensure debootstrap
    local root="$STATE/build-default/rootfs"
    rm -rf "$STATE/build-default" && mkdir -p "$root"
    local mirror
    mirror=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null | grep -oE 'https?://[^ ]+' | grep -v security | head -1 || true)
    # The machine's own apt sources are the only mirror we use: no hard-coded host.
    if [ -z "$mirror" ]; then
      echo "[images] ERROR: no Debian mirror in /etc/apt/sources.list{,.d/}: add one (the one apt-get uses) or build $DEFAULT on a machine that has one" >&2
      exit 1
    fi
    say "building $DEFAULT offline: debootstrap bookworm from $mirror (a few minutes; log $STATE/debootstrap.log)"
    debootstrap --variant=minbase \
      --include=bash,git,ca-certificates,curl,jq,procps,python3,less,patch,diffutils,findutils,grep,sed,tar,gzip \
      bookworm "$root" "$mirror" >"$STATE/debootstrap.log" 2>&1 &
    local pid=$!
    while kill -0 $pid 2>/dev/null; do
      sleep 10; say "  debootstrap: $(grep -cE '^I: (Retrieving|Validating|Extracting|Unpacking|Configuring)' "$STATE/debootstrap.log" || true) steps done, last: $(tail -1 "$STATE/debootstrap.log" | cut -c1-80)"
    done
    wait $pid || { tail -20 "$STATE/debootstrap.log" >&2; say "debootstrap failed"; return 1; }
    rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
    say "importing rootfs into Docker"
    tar -C "$root" -c . | docker import --change "LABEL troupe.image.version=$IMAGE_VERSION" - troupe-sandbox-default-rootfs:latest >/dev/null
    rm -rf "$STATE/build-default"
  fi
  local ctx="$STATE/build-default-ctx"
  rm -rf "$ctx" && mkdir -p "$ctx" && cp sandbox-images/default/Dockerfile.offline "$ctx/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q --label "troupe.image.version=$IMAGE_VERSION" -t "$DEFAULT" "$ctx" >/dev/null
  say "$DEFAULT built"
}

build_minimal
if [ "${TROUPE_SKIP_DEFAULT_IMAGE:-0}" = 1 ]; then
  say "skipping $DEFAULT (TROUPE_SKIP_DEFAULT_IMAGE=1)"
else
  build_default || { say "WARNING: $DEFAULT could not be built; hosted agents need TROUPE_DEFAULT_IMAGE set to an image you have"; [ "${TROUPE_IMAGES_REQUIRED:-0}" = 1 ] && exit 1; true; }
fi
