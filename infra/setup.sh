#!/usr/bin/env bash
# Everything a fresh machine needs, idempotent and fast when nothing changed:
# system packages (apt-get), uv, the three Python environments, and the JVM jars.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup]\033[0m %s\n' "$*" >&2; exit 1; }

UV_VERSION=0.13.8

# --- system packages -------------------------------------------------------------------
need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
# the dashboard's browser tests drive Debian's Chromium with Playwright (no browser download)
command -v chromium >/dev/null || need_apt+=(chromium)
if ((${#need_apt[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if command -v apt-get >/dev/null && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
    log "installing system packages: ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    die "missing system packages: ${need_apt[*]} (install them with your package manager)"
  fi
fi
# the Debian postgresql package starts its own cluster on 5432; Encore runs its own
if [ -x /etc/init.d/postgresql ] && [ "$(id -u)" -eq 0 ]; then
  /etc/init.d/postgresql stop >/dev/null 2>&1 || true
fi

# --- uv ---------------------------------------------------------------------------------
if ! command -v uv >/dev/null || [ "$(uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  log "installing uv $UV_VERSION"
  python3.11 -m pip install -q --disable-pip-version-check "uv==$UV_VERSION" 2>/dev/null \
    || python3 -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
export UV_PYTHON=3.11

# --- Python environments ----------------------------------------------------------------
log "core environment (.venv)"
uv sync --frozen --quiet
log "flink environment (infra/envs/flink/.venv)"
(cd infra/envs/flink && uv sync --frozen --quiet)
if [ "${ENCORE_SETUP_AIRFLOW:-1}" = "1" ]; then
  log "airflow environment (infra/envs/airflow/.venv)"
  (cd infra/envs/airflow && uv sync --frozen --quiet)
fi

# --- JVM jars ---------------------------------------------------------------------------
JARS_DIR="${ENCORE_JARS_DIR:-$PWD/.jars}"
stamp="$JARS_DIR/.stamp"
if [ ! -f "$stamp" ] || [ -n "$(find infra/jars -name pom.xml -newer "$stamp")" ]; then
  log "resolving JVM jars with Maven into $JARS_DIR"
  rm -rf "$JARS_DIR"
  mvn -q -B -f infra/jars/pom.xml package -Djars.dir="$JARS_DIR"
  touch "$stamp"
fi
log "ready"
