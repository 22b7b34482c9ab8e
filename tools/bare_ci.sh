#!/usr/bin/env bash
# Run .ci/run the way CI does — a fresh clone of main — but on a bare Debian root where nothing is
# prepared: debootstrap bookworm (minbase: no Python, PostgreSQL, Mosquitto, Chromium or CA bundle),
# import it as a podman image, run it in its own network namespace (slirp4netns) so this machine's
# services are invisible. Given from the host: the clone, and what every machine on this network has (its
# egress CA certificates, and the variables that point pip at the system CA bundle).
#
#   tools/bare_ci.sh [BRANCH]        # needs root, debootstrap, podman, runc, slirp4netns
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${MICRODC_BARE_DIR:-/var/tmp/microdc-bare}
IMAGE=microdc-bare-bookworm:latest
BRANCH=${1:-main}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

command -v debootstrap >/dev/null && command -v podman >/dev/null && command -v slirp4netns >/dev/null || {
  echo "needs debootstrap, podman, runc and slirp4netns: apt-get install debootstrap podman runc slirp4netns" >&2
  exit 2
}
# podman on these machines: runc, cgroupfs, no default ulimits
export CONTAINERS_CONF=$WORK/containers.conf
mkdir -p "$WORK"
printf '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\n' \
  > "$CONTAINERS_CONF"

if ! podman image exists "$IMAGE"; then
  rm -rf "$WORK/root"
  debootstrap --variant=minbase bookworm "$WORK/root" "$MIRROR"
  tar -C "$WORK/root" -c . | podman import - "$IMAGE"
  rm -rf "$WORK/root"
fi

rm -rf "$WORK/clone"
git clone -q --branch "$BRANCH" "$ROOT" "$WORK/clone"
cas=()
for f in /usr/local/share/ca-certificates/*.crt; do
  [ -e "$f" ] && cas+=(-v "$f:/usr/local/share/ca-certificates/$(basename "$f"):ro")
done
bundle=/etc/ssl/certs/ca-certificates.crt
exec podman run --rm --runtime runc --network slirp4netns --shm-size=1g "${cas[@]}" \
  -e PIP_CERT=$bundle -e SSL_CERT_FILE=$bundle -e REQUESTS_CA_BUNDLE=$bundle -e PIP_DEFAULT_TIMEOUT=180 \
  -v "$WORK/clone:/work/microdc" -w /work/microdc "$IMAGE" \
  bash -c 'echo "commit $(cat .git/refs/heads/* 2>/dev/null | head -n1)"; CI=true .ci/run'
