#!/usr/bin/env bash
# Builds the stand-in for the Lambda Python 3.12 base image (which cannot be pulled here)
# and prints its tag on the last line of stdout:
#
#   debootstrap --variant=minbase bookworm  + libssl3 libsqlite3-0 libffi8 ca-certificates
#   pyenv's Python 3.12, copied to the path it has on this machine
#   awslambdaric (PyPI) in /var/runtime, /var/runtime/bootstrap (this folder)
#   -> docker import
#
# The tag is a hash of everything that goes in (this script, bootstrap, the Python
# build, the awslambdaric pin), so the image is built once and reused until one changes.
# It is Debian, not Amazon Linux: see README "Docker: real `sam local invoke`".
#
# Usage: runtime_image.sh PYTHON3.12   (needs a running dockerd, debootstrap, root)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHON="${1:?usage: runtime_image.sh /path/to/python3.12}"
SUITE=bookworm
PACKAGES=libssl3,libsqlite3-0,libffi8,ca-certificates
AWSLAMBDARIC=awslambdaric==4.2.2
REPO=vidpipe/lambda-python3.12-standin

log() { echo "runtime image: $*" >&2; }

PY_PREFIX="$("$PYTHON" -c 'import sys; print(sys.base_prefix)')"
PY_VERSION="$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
case "$PY_VERSION" in 3.12.*) ;; *) log "$PYTHON is Python $PY_VERSION, not 3.12"; exit 2 ;; esac

TAG="$( { cat "$0" "$HERE/bootstrap"; echo "$PY_PREFIX $PY_VERSION $AWSLAMBDARIC $SUITE $PACKAGES";
          sha256sum "$PY_PREFIX/bin/python3.12"; } | sha256sum | cut -c1-16)"
IMAGE="$REPO:$TAG"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "reusing $IMAGE"
  echo "$IMAGE"
  exit 0
fi

# The Debian mirror is the one this machine's apt uses (never written into the repository):
# the first deb source whose suites include $SUITE itself (not -security / -updates).
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '
      function done_para() { if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uris != "") { split(uris, u, " "); print u[1]; exit 0 }
                             types = ""; suites = ""; uris = "" }
      /^[ \t]*$/ { done_para(); next }
      /^Types:/  { sub(/^Types:[ \t]*/, ""); types = $0 }
      /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
      /^URIs:/   { sub(/^URIs:[ \t]*/, ""); uris = $0 }
      END { done_para() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [options] URI SUITE COMPONENTS...
    sed -E 's/\[[^]]*\]//' "$f" | awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2 }'
  done
}
MIRROR="$(apt_mirror | head -n1)"
if [ -z "$MIRROR" ]; then
  log "no Debian $SUITE source in this machine's apt configuration"
  exit 2
fi

WORK="$(mktemp -d /var/tmp/vidpipe-standin.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/rootfs"

log "debootstrap $SUITE (minbase + $PACKAGES) from the apt mirror"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
  tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }
# apt's package lists and caches are not needed at run time.
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT"/usr/share/doc "$ROOT"/usr/share/man

log "Python $PY_VERSION from $PY_PREFIX"
mkdir -p "$ROOT$PY_PREFIX"
# Its test suite, the static libpython, tkinter/idle and the host's site-packages stay out.
tar -C "$PY_PREFIX" -cf - \
    --exclude=./lib/python3.12/test --exclude=./lib/python3.12/idlelib --exclude=./lib/python3.12/tkinter \
    --exclude='./lib/python3.12/config-3.12-*/libpython3.12.a' --exclude='./lib/python3.12/site-packages/*' . \
  | tar -C "$ROOT$PY_PREFIX" -xf -

log "$AWSLAMBDARIC into /var/runtime"
mkdir -p "$ROOT/var/runtime" "$ROOT/var/task" "$ROOT/opt"
"$PYTHON" -m pip install --quiet --disable-pip-version-check --no-compile --only-binary=:all: \
    --root-user-action=ignore --target "$ROOT/var/runtime" "$AWSLAMBDARIC" >"$WORK/pip.log" 2>&1 || {
  tail -n 30 "$WORK/pip.log" >&2; exit 1; }
install -m 0755 "$HERE/bootstrap" "$ROOT/var/runtime/bootstrap"

log "docker import $IMAGE"
tar -C "$ROOT" -cf - . | docker import \
  --change "ENV PATH=$PY_PREFIX/bin:/usr/local/bin:/usr/bin:/bin" \
  --change "ENV PYTHONPATH=/opt/python/lib/python3.12/site-packages:/opt/python:/var/runtime" \
  --change "ENV LAMBDA_TASK_ROOT=/var/task" \
  --change "ENV LAMBDA_RUNTIME_DIR=/var/runtime" \
  --change "ENV LANG=C.UTF-8" \
  --change "ENV TZ=:UTC" \
  --change "WORKDIR /var/task" \
  --change 'ENTRYPOINT ["/var/runtime/bootstrap"]' \
  - "$IMAGE" >/dev/null

# The image must import what the functions need from the standard library.
docker run --rm --entrypoint python3.12 "$IMAGE" -c \
  'import ssl, sqlite3, ctypes, lzma, bz2, zlib, decimal, uuid, awslambdaric; print("ok")' >/dev/null || {
  log "the imported image cannot run Python 3.12 with its standard library"; docker rmi "$IMAGE" >/dev/null; exit 1; }
log "built $IMAGE"
echo "$IMAGE"
