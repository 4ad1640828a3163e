#!/usr/bin/env bash
# The device check for a machine with a real GPU (the `device` tool's H100/H200, or any other):
# builds wgflow-bench in release, prints the adapter's report (name, driver, subgroup sizes,
# features, limits, cooperative matrix configurations), runs the benchmark harness on the
# best adapter (all four placement policies) and the GPU sweep (matmul 1024-4096, conv2d
# shapes, 64M-element elementwise ops, run overhead; GFLOP/s and GB/s) with the adapter's default
# kernels, then again with each other kernel variant (regblock, tiled, and f16 cooperative
# matrices where offered), and writes all of it to bench-results/<adapter>.md. About 4-7 minutes
# on a real GPU; under 8.
#
# Usage: bash scripts/device-bench.sh [ADAPTER]   (an index or part of a name; default: the best)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/wgflow-xdg-$(id -u)"
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fi
adapter=()
if [ -n "${1:-}" ]; then adapter=(--adapter "$1"); fi

start=$(date +%s)
cargo build --release --bin wgflow-bench
bench=target/release/wgflow-bench
info="$("$bench" "${adapter[@]}" --device-info)"
echo "$info"
name="$(echo "$info" | sed -n 's/^adapter: #[0-9]* \(.*\) (.*, .*)$/\1/p' | head -1)"
slug="$(echo "${name:-unknown}" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/^-//; s/-$//')"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$bench" "${adapter[@]}" --out "$work/suite"
"$bench" "${adapter[@]}" --sweep --out "$work/sweep"
# The sweep again with each other matmul / conv2d kernel variant the adapter runs, and with
# f16 cooperative matrices where it offers only those (GpuOptions::allow_f16_matmul).
variants="regblock tiled"
if echo "$info" | grep -q "A/B F16, C/result F32"; then variants="$variants f16"; fi
for v in $variants; do
  if [ "$v" = f16 ]; then
    "$bench" "${adapter[@]}" --sweep --f16-matmul --out "$work/sweep-$v"
  else
    WGFLOW_KERNEL=$v "$bench" "${adapter[@]}" --sweep --out "$work/sweep-$v"
  fi
done

mkdir -p bench-results
out="bench-results/$slug.md"
{
  echo "# wgflow on $name"
  echo
  echo "Written by \`bash scripts/device-bench.sh\` on $(date -u +%Y-%m-%d), in $(( $(date +%s) - start )) s."
  echo
  echo '```text'
  echo "$info"
  echo '```'
  echo
  echo "## The benchmark harness (four placement policies)"
  echo
  cat "$work/suite/latest.md"
  echo
  echo "## GPU sweep (all-GPU), the adapter's default kernels"
  echo
  cat "$work/sweep/sweep.md"
  for v in $variants; do
    echo
    if [ "$v" = f16 ]; then echo "## GPU sweep, f16 cooperative matrices (allow_f16_matmul)"; else echo "## GPU sweep, WGFLOW_KERNEL=$v"; fi
    echo
    cat "$work/sweep-$v/sweep.md"
  done
} > "$out"
echo "wrote $out"
