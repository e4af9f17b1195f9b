# shellcheck shell=bash
# Shared by the scripts in infra/bin: where builds and venvs live, and the
# one release build every script uses.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export STREAMREEL_CACHE="${STREAMREEL_CACHE:-$HOME/.cache/streamreel}"
# Outside the clone, so a fresh clone (and CI) builds incrementally.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/streamreel-target}"
BIN="$CARGO_TARGET_DIR/release"

build_release() {
    (cd "$REPO" && cargo build --release --locked --workspace --bins)
}

# Installs a Python venv NAME from REQUIREMENTS under the cache, once and
# again whenever REQUIREMENTS changes; prints the venv's directory.
ensure_venv() {
    local name="$1" requirements="$2"
    local venv="$STREAMREEL_CACHE/venvs/$name"
    if [ ! -f "$venv/.installed" ] || ! cmp -s "$requirements" "$venv/.installed"; then
        echo "installing $name into $venv" >&2
        python3 -m venv "$venv" >&2
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
        cp "$requirements" "$venv/.installed"
    fi
    echo "$venv"
}

# Simulates EVENTS events of one day (2025-08-11, with late and duplicate
# deliveries and bad lines) into the landing directory LANDING; prints the
# landing window "FROM TO" the data spans.
simulate_day() {
    local report
    report="$("$BIN/simulate-events" --landing "$1" --metadata "$REPO/metadata/video_metadata.csv" --date 2025-08-11 --events "$2" | tail -n 1)"
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["landing_from"], r["landing_to"])' "$report"
}

# Installs the Debian package PACKAGE when COMMAND is missing (as root, or
# through sudo).
ensure_debian_package() {
    local package="$1" command="$2"
    command -v "$command" > /dev/null && return
    echo "installing $package from Debian's packages" >&2
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$package" >&2
}
