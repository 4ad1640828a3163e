#!/usr/bin/env bash
# wgflow's CPU path against TensorFlow's, side by side: installs TF (tensorflow-cpu) in a
# private venv if absent, then runs ../shared/peers/tf_bench.py with scripts/tf_digits.py (TF's
# side of the digits CNN training step) and scripts/tf_mobilenet.py (MobileNetV2 from the
# shared .pb), and `wgflow-bench --cpu-only` alternately (TF, wgflow, TF, wgflow, ...) on the same cases, so that the machine's swings of
# speed weigh on both, and writes one table of ratios to bench-results/vs-tf.md.
#
# Usage: bash scripts/bench-vs-tf.sh [ROUNDS]   (default 2 rounds of each; about 2 min a round)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${1:-2}"
venv="${WGFLOW_TF_VENV:-.venv-tf}"
peer="../shared/peers/tf_bench.py"
[ -f "$peer" ] || { echo "bench-vs-tf: $peer not found (the shared/ folder beside the project)" >&2; exit 1; }

if ! "$venv/bin/python" -c "import tensorflow" >/dev/null 2>&1; then
  echo "installing TensorFlow (tensorflow-cpu) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q tensorflow-cpu numpy
fi

# A private runtime dir silences Mesa's warning when the bench probes for adapters.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/wgflow-xdg-$(id -u)"
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fi

cargo build --release --bin wgflow-bench
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for i in $(seq 1 "$rounds"); do
  echo "round $i of $rounds: TensorFlow"
  "$venv/bin/python" "$peer" --json "$work/tf-$i.json" > "$work/tf-$i.log" 2>&1
  "$venv/bin/python" scripts/tf_digits.py --json "$work/tf-digits-$i.json" > "$work/tf-digits-$i.log" 2>&1
  "$venv/bin/python" scripts/tf_mobilenet.py --json "$work/tf-mobilenet-$i.json" > "$work/tf-mobilenet-$i.log" 2>&1
  echo "round $i of $rounds: wgflow"
  target/release/wgflow-bench --cpu-only --out "$work/wgflow-$i" > "$work/wgflow-$i.log"
done
mkdir -p bench-results
"$venv/bin/python" scripts/vs_tf.py "$work" "$rounds" > bench-results/vs-tf.md
cat bench-results/vs-tf.md
