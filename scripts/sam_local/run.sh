#!/usr/bin/env bash
# `make sam-local`: every function in template.yaml run by the real `sam local invoke`,
# in a Lambda container, against `vidpipe local up`. As root, on a Debian machine:
#
#   1. installs docker.io and debootstrap from Debian's packages when missing;
#   2. starts dockerd when none is running (and stops it at the end);
#   3. builds the stand-in Python 3.12 runtime image once (runtime_image.sh; reused
#      while its inputs are unchanged);
#   4. sam build;
#   5. invoke_all.py: `vidpipe local up` on the docker bridge address, --env-vars from
#      it, the sample upload, `sam local invoke` per function and event, the check.
#
# Usage: run.sh PYTHON3.12   (the Makefile passes its PYTHON)
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${1:?usage: run.sh /path/to/python3.12}"
STARTED=$(date +%s)
log() { echo "sam-local: $*" >&2; }

# ------------------------------------------------------------------ 1. packages
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/tmp/vidpipe-sam-local-apt.log 2>&1 &&
    apt-get install -y -q "${missing[@]}" >>/tmp/vidpipe-sam-local-apt.log 2>&1 || {
      tail -n 20 /tmp/vidpipe-sam-local-apt.log >&2; exit 1; }
fi

# ------------------------------------------------------------------ 2. dockerd
DOCKERD_PID=""
DOCKERD_LOG=""
stop_dockerd() {
  local status=$?
  [ -n "$DOCKERD_PID" ] || return 0
  if [ "$status" -ne 0 ] && [ -s "$DOCKERD_LOG" ]; then
    log "the step failed; the last lines of the dockerd it started:"
    tail -n 15 "$DOCKERD_LOG" >&2
  fi
  kill -TERM "$DOCKERD_PID" 2>/dev/null || return 0
  for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$DOCKERD_PID" 2>/dev/null; then
    log "dockerd $DOCKERD_PID did not stop in 30 s: killing it"
    kill -KILL "$DOCKERD_PID" 2>/dev/null || true
  fi
  rm -f "$DOCKERD_LOG"
}
trap stop_dockerd EXIT
trap 'exit 130' INT TERM  # so that the EXIT trap stops dockerd then too

if docker info >/dev/null 2>&1; then
  log "using the dockerd that is running"
else
  DOCKERD_LOG="$(mktemp /tmp/vidpipe-dockerd.XXXXXX.log)"
  dockerd --storage-driver=overlay2 >"$DOCKERD_LOG" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 120); do
    docker info >/dev/null 2>&1 && break
    kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -n 20 "$DOCKERD_LOG" >&2; log "dockerd exited"; exit 1; }
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { tail -n 20 "$DOCKERD_LOG" >&2; log "dockerd did not answer in 60 s"; exit 1; }
  log "started dockerd ($DOCKERD_PID); it is stopped at the end"
fi
# Containers reach the host at the default bridge's gateway: the bridge interface's address
# (docker 20.10 leaves the default bridge's IPAM gateway empty).
BRIDGE="$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}')"
if [ -z "$BRIDGE" ]; then
  BRIDGE_IF="$(docker network inspect bridge -f '{{index .Options "com.docker.network.bridge.name"}}')"
  BRIDGE="$(ip -4 -o addr show dev "${BRIDGE_IF:-docker0}" | awk '{ split($4, a, "/"); print a[1]; exit }')"
fi
[ -n "$BRIDGE" ] || { log "the default docker bridge has no gateway address"; exit 1; }

# ------------------------------------------------------------------ 3. runtime image
IMAGE="$(bash scripts/sam_local/runtime_image.sh "$PYTHON" | tail -n 1)"

# ------------------------------------------------------------------ 4. sam build
# A build folder of its own (`make lint` checks sizes in .aws-sam/build), byte-compiled:
# every invocation is a fresh container, which would otherwise compile boto3, pydantic,
# Powertools... again at each cold start (seconds of CPU each time).
BUILD_DIR=.aws-sam/sam-local
log "sam build --build-dir $BUILD_DIR"
PATH="$(dirname "$PYTHON"):$PATH" SAM_CLI_TELEMETRY=0 .venv-sam/bin/sam build --region us-east-1 \
  --build-dir "$BUILD_DIR" >/tmp/vidpipe-sam-build.log 2>&1 || { tail -n 30 /tmp/vidpipe-sam-build.log >&2; exit 1; }
"$PYTHON" -m compileall -q -j 0 "$BUILD_DIR" >/dev/null

# ------------------------------------------------------------------ 5. invoke every function
.venv/bin/python scripts/sam_local/invoke_all.py --image "$IMAGE" --host "$BRIDGE" --started "$STARTED" \
  --template "$BUILD_DIR/template.yaml"
