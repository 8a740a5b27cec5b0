#!/usr/bin/env bash
# Builds the test images locally (no registry is reachable here): busybox:1.37.0 and
# busybox:latest, a FROM-scratch image holding Debian's static busybox and its applet links,
# so upstream's example specs run as written. Safe to run again.
set -euo pipefail

if docker image inspect busybox:1.37.0 >/dev/null 2>&1 && docker image inspect busybox:latest >/dev/null 2>&1; then
  exit 0
fi
if ! dpkg -s busybox-static >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
busybox=/bin/busybox
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/tmp" "$ctx/rootfs/etc"
cp "$busybox" "$ctx/rootfs/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$ctx/rootfs/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" >"$ctx/rootfs/etc/passwd"
echo "nobody:x:65534:65534:nobody:/nonexistent:/bin/false" >>"$ctx/rootfs/etc/passwd"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENV PATH=/bin
CMD ["/bin/sh"]
DOCKERFILE
docker build --quiet -t busybox:1.37.0 -t busybox:latest "$ctx" >/dev/null
echo "built busybox:1.37.0 and busybox:latest"
