# Sourced: installs (once) the Airflow venv from airflow/requirements.txt into
# the cache and puts it first on PATH.
AIRFLOW_VENV="${STREAMREEL_CACHE:-$HOME/.cache/streamreel}/venvs/airflow"
AIRFLOW_REQUIREMENTS="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/airflow/requirements.txt"
if [ ! -f "$AIRFLOW_VENV/.installed" ] || ! cmp -s "$AIRFLOW_REQUIREMENTS" "$AIRFLOW_VENV/.installed"; then
    echo "installing Airflow into $AIRFLOW_VENV" >&2
    python3 -m venv "$AIRFLOW_VENV"
    "$AIRFLOW_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$AIRFLOW_REQUIREMENTS"
    cp "$AIRFLOW_REQUIREMENTS" "$AIRFLOW_VENV/.installed"
fi
export PATH="$AIRFLOW_VENV/bin:$PATH"
