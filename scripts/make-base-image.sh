#!/usr/bin/env bash
# Build a local stand-in for python:3.11-slim on hosts that cannot pull from a registry
# (idempotent: nothing happens when TAG already exists).
#   bash scripts/make-base-image.sh [TAG]          (default local/python:3.11-slim)
# Steps: debootstrap --variant=minbase bookworm from the host's own Debian mirror (read from
# /etc/apt/sources.list.d at run time; MIRROR=... overrides), `docker import` as
# local/debian:bookworm (DEBIAN_TAG overrides), then a Dockerfile adds Debian's python3 (3.11),
# python3-venv, python3-pip and ca-certificates, with `python` and `python3` on PATH.
# This is a test/CI stand-in only: the product Dockerfiles keep the official (exact-tag pinned)
# python:3.11-slim as their default BASE_IMAGE. Needs root, debootstrap and a running dockerd
# (scripts/docker-up.sh).
set -euo pipefail
tag=${1:-local/python:3.11-slim}
debian_tag=${DEBIAN_TAG:-local/debian:bookworm}
suite=bookworm

now() { date +%s.%N; }
secs() { printf '%.1f' "$(echo "$2 - $1" | bc)"; }

# One build at a time (parallel CI jobs or tests on the same daemon).
exec 9>"${TMPDIR:-/tmp}/repro-kit-make-base-image.lock"
flock 9

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base: $tag exists ($(docker image inspect -f '{{.Id}}' "$tag" | cut -c1-19)); nothing to do"
  exit 0
fi
for tool in debootstrap docker bc; do
  command -v "$tool" >/dev/null || { echo "base: needs $tool (scripts/docker-up.sh installs it)" >&2; exit 1; }
done

# The Debian mirror this host's apt uses (deb822 *.sources first, then one-line *.list files);
# the entry that serves the suite itself, not -security / -updates.
find_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '
      function flush() { if (uris != "" && (" " suites " ") ~ (" " suite " ")) { print uris; found = 1; exit } uris = ""; suites = "" }
      /^[[:space:]]*$/ { flush(); next }
      /^URIs:/ { uris = $2 }
      /^Suites:/ { $1 = ""; suites = $0 }
      END { if (!found) flush() }' "$f"
  done | head -1
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '$1 == "deb" { u = ($2 ~ /^\[/) ? $3 : $2; s = ($2 ~ /^\[/) ? $4 : $3; if (s == suite) print u }' "$f"
  done | head -1
}
mirror=${MIRROR:-$(find_mirror | head -1)}
[ -n "$mirror" ] || { echo "base: no Debian $suite mirror found in /etc/apt (set MIRROR=...)" >&2; exit 1; }
mirror=${mirror%/}
echo "base: building $tag from $suite at the host's Debian mirror"

work=$(mktemp -d "${TMPDIR:-/tmp}/make-base-image.XXXXXX")
cleanup() {
  # debootstrap may leave /proc or /sys mounted inside the target when it fails.
  local m
  for m in $(awk -v w="$work/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" || true
  done
  rm -rf --one-file-system "$work" || true
}
trap cleanup EXIT

t_start=$(now)
if docker image inspect "$debian_tag" >/dev/null 2>&1; then
  echo "base: $debian_tag exists; skipping debootstrap"
  t_boot=$t_start t_import=$t_start
else
  debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { echo "base: debootstrap failed:" >&2; tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  t_boot=$(now)
  echo "base: debootstrap --variant=minbase $suite: $(secs "$t_start" "$t_boot") s ($(du -sh "$work/rootfs" | cut -f1))"
  tar -C "$work/rootfs" --numeric-owner -c . \
    | docker import --change 'CMD ["bash"]' - "$debian_tag" >/dev/null
  t_import=$(now)
  echo "base: docker import as $debian_tag: $(secs "$t_boot" "$t_import") s"
  rm -rf --one-file-system "$work/rootfs"
fi

# An https mirror needs a CA bundle that a minbase system lacks: hand the host's bundle to this
# throwaway stand-in's build only, delete it in the same RUN, and flatten the image afterwards
# so no layer keeps it.
ctx=$work/ctx
mkdir -p "$ctx"
ca_copy="" ca_opt="" ca_rm=":"
case $mirror in
  https://*)
    cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca.crt"
    ca_copy="COPY host-ca.crt /tmp/host-ca.crt"
    ca_opt="-o Acquire::https::CAInfo=/tmp/host-ca.crt"
    ca_rm="rm -f /tmp/host-ca.crt" ;;
esac
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $debian_tag
ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
$ca_copy
RUN apt-get $ca_opt update \\
 && apt-get $ca_opt install -y --no-install-recommends \\
      python3 python3-venv python3-pip ca-certificates \\
 && ln -sf /usr/bin/python3 /usr/local/bin/python3 \\
 && ln -sf /usr/bin/python3 /usr/local/bin/python \\
 && rm -f /usr/lib/python3.*/EXTERNALLY-MANAGED \\
 && apt-get clean && rm -rf /var/lib/apt/lists/* \\
 && $ca_rm
LABEL org.opencontainers.image.description="local stand-in for python:3.11-slim (Debian $suite python3)"
CMD ["python3"]
DOCKERFILE
# With the CA copied in, the build result stays untagged until it has been flattened.
build_tag=()
[ -n "$ca_copy" ] || build_tag=(-t "$tag")
DOCKER_BUILDKIT=0 docker build -q --network host --force-rm "${build_tag[@]}" "$ctx" \
  >"$work/build.log" 2>"$work/build.err" \
  || { echo "base: docker build failed:" >&2; tail -n 30 "$work/build.log" "$work/build.err" >&2; exit 1; }
built=$(tail -n 1 "$work/build.log")
t_build=$(now)
echo "base: python layer (apt-get install python3 python3-venv python3-pip): $(secs "$t_import" "$t_build") s"

if [ -n "$ca_copy" ]; then
  cid=$(docker create "$built")
  label="org.opencontainers.image.description=\"local stand-in for python:3.11-slim (Debian $suite python3)\""
  docker export "$cid" | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change "LABEL $label" --change 'CMD ["python3"]' \
    - "$tag" >/dev/null || status=$?
  docker rm "$cid" >/dev/null
  docker rmi "$built" >/dev/null
  [ "${status:-0}" = 0 ] || { echo "base: flattening failed" >&2; exit 1; }
  echo "base: flattened (no layer holds the build-time CA): $(secs "$t_build" "$(now)") s"
fi

docker run --rm "$tag" python -c 'import sys, venv, ensurepip; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "base: $tag has no working python 3.11" >&2; exit 1; }
echo "base: $tag ready ($(docker image inspect -f '{{.Id}}' "$tag" | cut -c1-19)," \
     "$(docker run --rm "$tag" python3 -V)) in $(secs "$t_start" "$(now)") s total"
