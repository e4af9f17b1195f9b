# shellcheck shell=bash
# Sourced by the test and bench scripts: installs (once) and starts a real
# S3-compatible server on 127.0.0.1, creates the test bucket, proves that it
# answers conditional PUT correctly, and exports the standard AWS variables.
# The server stops when the sourcing shell exits.

STREAMREEL_CACHE="${STREAMREEL_CACHE:-$HOME/.cache/streamreel}"
S3_VENV="$STREAMREEL_CACHE/venvs/s3"
S3_REQUIREMENTS=("moto[s3]==5.2.5" "flask==3.1.3" "flask-cors==6.0.5" "boto3==1.44.8")
S3_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [ ! -x "$S3_VENV/bin/python" ] || ! "$S3_VENV/bin/python" -c "import moto, flask, boto3" 2>/dev/null; then
    echo "installing the S3 test server (moto) into $S3_VENV" >&2
    python3 -m venv "$S3_VENV"
    "$S3_VENV/bin/pip" install --quiet --disable-pip-version-check "${S3_REQUIREMENTS[@]}"
fi

S3_PORT="$("$S3_VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
S3_LOG="$(mktemp -t streamreel-s3.XXXXXX.log)"
"$S3_VENV/bin/python" "$S3_DIR/serve.py" "$S3_PORT" >"$S3_LOG" 2>&1 &
S3_PID=$!
trap 'kill $S3_PID 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
    if "$S3_VENV/bin/python" -c "import socket,sys; socket.create_connection(('127.0.0.1', $S3_PORT), 0.2)" 2>/dev/null; then break; fi
    sleep 0.1
done

export AWS_ENDPOINT_URL="http://127.0.0.1:$S3_PORT"
export AWS_ACCESS_KEY_ID="test"
export AWS_SECRET_ACCESS_KEY="test"
export AWS_REGION="us-east-1"
export AWS_ALLOW_HTTP="true"
export STREAMREEL_TEST_S3_BUCKET="streamreel-test"
"$S3_VENV/bin/python" "$S3_DIR/probe.py" "$AWS_ENDPOINT_URL" "$STREAMREEL_TEST_S3_BUCKET" || {
    echo "the S3 test server failed to start or to honour conditional PUT; its log:" >&2
    cat "$S3_LOG" >&2
    exit 1
}
echo "S3 test server (moto, single-threaded) on $AWS_ENDPOINT_URL, bucket $STREAMREEL_TEST_S3_BUCKET" >&2
