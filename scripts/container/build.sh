#!/usr/bin/env bash
# Builds the voice-lane image from docker/Dockerfile with podman (preferred) or docker.
#
#   bash scripts/container/build.sh [TAG]     # TAG defaults to $LANE_IMAGE, else voice-lane:dev
#
# Base image:
# - LANE_BASE_IMAGE set (e.g. pytorch/pytorch:2.8.0-cuda12.8-cudnn9-runtime): that image, its own torch,
#   the nemo extra (production);
# - unset: a local Debian bookworm made with `debootstrap --variant=minbase` from this machine's apt
#   mirror and imported as $LANE_LOCAL_BASE (default voice-lane-base:bookworm; reused when present),
#   the host's exact torch version (the CPU build here) and no extra (a lean image for CI).
# Knobs (environment): LANE_CONTAINER_ENGINE (podman | docker; default podman when installed),
# LANE_TORCH_SPEC (a pip requirement for torch; "" keeps the base's), LANE_EXTRAS (pyproject extras),
# LANE_DEBIAN_MIRROR (default: the first bookworm URI in /etc/apt/sources*), LANE_PYTHON (the Python
# whose pip configuration and torch version are read; default .venv/bin/python, else python3).
#
# The host's pip configuration travels into the build, never into the image: `pip config list`
# (files and PIP_* variables) becomes a pip.conf passed as the build secret `pipconf`; the host CA
# bundle is the build secret `ca` (PIP_CERT inside). With podman, every local path that configuration
# names (find-links folders, file:// indexes, constraint files) is bind-mounted read-only at the same
# path for the build's RUN steps (`podman build --volume`); docker's builder has no such mounts, so
# with docker only URL indexes work. The pip cache is a cache mount in the Dockerfile: warm rebuilds
# reuse it, and unchanged layers are reused by the engine's layer cache.
# Prints one timing line per step on stderr and the image id on stdout.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd -P)
TAG=${1:-${LANE_IMAGE:-voice-lane:dev}}
LOCAL_BASE=${LANE_LOCAL_BASE:-voice-lane-base:bookworm}
CA=${LANE_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

die() { echo "build.sh: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }
now_ms() { date +%s%3N; }
secs() { local d=$(( $(now_ms) - $1 )); printf '%d.%03d' $((d / 1000)) $((d % 1000)); }
as_root() { if [[ ${EUID} -eq 0 ]]; then "$@"; else sudo -n "$@"; fi; }

engine=${LANE_CONTAINER_ENGINE:-}
if [[ -z $engine ]]; then
    if command -v podman >/dev/null 2>&1; then engine=podman; else engine=docker; fi
fi
command -v "$engine" >/dev/null 2>&1 || die "$engine not found (bash scripts/container/engine.sh install)"

py=${LANE_PYTHON:-}
if [[ -z $py ]]; then
    if [[ -x $REPO/.venv/bin/python ]]; then py=$REPO/.venv/bin/python; else py=python3; fi
fi

has_image() { "$engine" image inspect --format '{{.Id}}' "$1" >/dev/null 2>&1; }

debian_mirror() {
    if [[ -n ${LANE_DEBIAN_MIRROR:-} ]]; then echo "$LANE_DEBIAN_MIRROR"; return; fi
    local uri
    # deb822 .sources: the URIs of a stanza whose Suites name bookworm (not bookworm-security)
    uri=$(awk 'BEGIN{RS=""} /Suites:[^\n]*bookworm( |\n|$)/ && !/security/ {
                 for (i = 1; i <= NF; i++) if ($i == "URIs:") { print $(i + 1); exit } }' \
              /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
    if [[ -z $uri && -f /etc/apt/sources.list ]]; then
        uri=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

make_local_base() {
    if has_image "$LOCAL_BASE"; then
        log "base: reusing $LOCAL_BASE"
        return 0
    fi
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found (bash scripts/container/engine.sh install)"
    local t0 mirror dir
    t0=$(now_ms)
    mirror=$(debian_mirror)
    dir=$(mktemp -d /var/tmp/voice-lane-rootfs.XXXXXX)
    # shellcheck disable=SC2064  # the path is fixed now
    trap "as_root rm -rf --one-file-system '$dir'" EXIT
    log "base: debootstrap --variant=minbase bookworm from $mirror"
    as_root debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1 \
        || die "debootstrap failed; last lines of $dir.log: $(tail -n 5 "$dir.log")"
    as_root rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    as_root tar --numeric-owner -C "$dir" -c . | "$engine" import --change 'CMD ["/bin/bash"]' - "$LOCAL_BASE" >/dev/null
    as_root rm -rf --one-file-system "$dir" "$dir.log"
    trap - EXIT
    log "base: $LOCAL_BASE made in $(secs "$t0") s"
}

# pip_conf OUT: the host's pip configuration as a pip.conf (cert left out: it is the `ca` secret);
# prints the local paths it names, one per line, for the bind mounts.
pip_conf() {
    "$py" - "$1" <<'PY'
import os, re, subprocess, sys
out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
rank = {"global": 0, "user": 1, "site": 2, ":env:": 3}
conf: dict[str, tuple[int, str]] = {}
for line in out.splitlines():
    m = re.match(r"^(:env:|[a-z]+)\.([\w-]+)='(.*)'$", line.strip())
    if not m:
        continue
    scope, key, value = m.groups()
    if key in ("cert", "client-cert", "config-file", "cache-dir", "no-cache-dir", "target", "prefix", "user"):
        continue
    r = rank.get(scope, 0)
    if key not in conf or r >= conf[key][0]:
        conf[key] = (r, value)
with open(sys.argv[1], "w") as f:
    f.write("# the host's pip configuration (scripts/container/build.sh)\n[global]\n")
    for key, (_, value) in sorted(conf.items()):
        f.write(f"{key} = {value}\n")
paths = set()
for key in ("find-links", "index-url", "extra-index-url", "constraint", "requirement"):
    for token in conf.get(key, (0, ""))[1].split():
        p = token[len("file://"):] if token.startswith("file://") else token if token.startswith("/") else ""
        if not p or not os.path.exists(p):
            continue
        p = os.path.realpath(p)
        # a file:// simple index links its wheels relative to itself (../../files/...): its parent too
        if key.endswith("index-url") and os.path.basename(p.rstrip("/")) == "simple":
            p = os.path.dirname(p.rstrip("/"))
        paths.add(p)
for p in sorted(paths):
    print(p)
PY
}

main() {
    local t0 base torch extras work args=() p id
    t0=$(now_ms)
    if [[ -n ${LANE_BASE_IMAGE:-} ]]; then
        base=$LANE_BASE_IMAGE
        torch=${LANE_TORCH_SPEC-}
        extras=${LANE_EXTRAS-nemo}
    else
        make_local_base
        base=$LOCAL_BASE
        if [[ -z ${LANE_TORCH_SPEC+x} ]]; then
            torch=$("$py" -c 'import importlib.metadata as m; print("torch==" + m.version("torch"))' 2>/dev/null || echo torch)
        else
            torch=$LANE_TORCH_SPEC
        fi
        extras=${LANE_EXTRAS-}
    fi
    [[ -r $CA ]] || die "CA bundle $CA not readable (LANE_CA_BUNDLE)"
    work=$(mktemp -d)
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" RETURN
    local mounts
    mounts=$(pip_conf "$work/pip.conf")
    args=(build --file "$REPO/docker/Dockerfile" --tag "$TAG"
          --build-arg "BASE_IMAGE=$base" --build-arg "TORCH_SPEC=$torch" --build-arg "LANE_EXTRAS=$extras"
          --secret "id=ca,src=$CA" --secret "id=pipconf,src=$work/pip.conf")
    if [[ $engine == podman* || $engine == */podman ]]; then
        # the build's RUN steps see the host's wheel folders and indexes, read-only, at the same paths;
        # host networking for apt/pip during the build (the runs themselves get --network none)
        while IFS= read -r p; do
            [[ -n $p ]] && args+=(--volume "$p:$p:ro")
        done <<<"$mounts"
        args+=(--network host --layers)
    else
        # the engine first (its own error says why it cannot be reached), then BuildKit: the legacy
        # builder has no build secrets or cache mounts
        "$engine" version --format '{{.Server.Version}}' >/dev/null || die "the Docker engine does not answer (DOCKER_HOST=${DOCKER_HOST:-unset})"
        "$engine" buildx version >/dev/null 2>&1 \
            || die "docker build needs BuildKit (the buildx plugin) for the Dockerfile's secrets and cache mounts; install docker-buildx, or build with podman (LANE_CONTAINER_ENGINE=podman)"
        [[ -z $mounts ]] || log "docker builder: the local pip paths are not mounted ($(tr '\n' ' ' <<<"$mounts"))"
        export DOCKER_BUILDKIT=1
    fi
    log "image: $engine build $TAG from $base (torch: ${torch:-from the base}; extras: ${extras:-none})"
    "$engine" "${args[@]}" "$REPO" >&2
    id=$("$engine" image inspect --format '{{.Id}}' "$TAG")
    log "image: $TAG ($id) built in $(secs "$t0") s"
    echo "$id"
}

main
