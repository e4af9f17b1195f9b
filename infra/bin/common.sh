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
