#!/usr/bin/env bash
# The project's test command: installs what the tests need on a fresh Debian machine
# (Mesa's lavapipe, a software Vulkan driver, when no Vulkan driver is present), then runs
# every test. With CI=true the GPU tests fail if no adapter is found; they never skip there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
  echo "no Vulkan driver found: installing Mesa's lavapipe (mesa-vulkan-drivers)"
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

# MPI for the data-parallel tests (feature `mpi`, tests/mpi.rs): OpenMPI's mpirun and headers,
# and libclang, which the mpi crate's build uses to generate its bindings.
mpi_missing=false
if command -v dpkg >/dev/null 2>&1; then
  dpkg -s openmpi-bin libopenmpi-dev libclang-dev >/dev/null 2>&1 || mpi_missing=true
else
  command -v mpirun >/dev/null 2>&1 || mpi_missing=true
fi
if [ "$mpi_missing" = true ]; then
  echo "MPI or libclang missing: installing openmpi-bin, libopenmpi-dev, libclang-dev"
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq openmpi-bin libopenmpi-dev libclang-dev >/dev/null
fi

# A private runtime dir silences Mesa's warning when none is set.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/wgflow-xdg-$(id -u)"
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fi

# In CI, talk to lavapipe directly: the Vulkan loader then skips probing other drivers.
lvp=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json
if [ "${CI:-}" = "true" ] && [ -z "${VK_ICD_FILENAMES:-}" ] && [ -f "$lvp" ]; then
  export VK_ICD_FILENAMES="$lvp"
fi

# --nocapture lets the golden suites print their conformance lines. The tests build once, with
# the `mpi` feature (one build serves every test, tests/mpi.rs included: it starts mpirun on
# localhost, loopback only, for 2 and 3 ranks; as root mpirun needs OMPI_ALLOW_RUN_AS_ROOT=1 and
# OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1, which the tests set). The default build, without MPI, is
# checked by CI's clippy run.
cargo test --features mpi "$@" -- --nocapture 2>&1

# The other kernel variants. The run above used the adapter's default matmul / conv2d kernels
# (on lavapipe, with its 8-wide subgroups: sg8). The GPU golden suites, the fusion tests and
# tests/kernel_variants.rs run again with each other variant forced (WGFLOW_KERNEL): tiled and
# regblock run everywhere; coop only where the adapter offers cooperative matrices that wgflow
# uses (tests/kernel_variants.rs checks that a forced variant is the one that ran).
if [ "$#" -eq 0 ]; then
  variants="tiled regblock"
  if cargo test --features mpi --test kernel_variants adapter_kernels -- --nocapture 2>/dev/null | grep -q "^coop offered: yes"; then
    variants="$variants coop"
  else
    echo "== coop: this adapter offers no cooperative matrix configuration wgflow uses; not run"
  fi
  # The regblock pass also runs the elementwise vec4 kernels' grid-stride loop, on a small grid
  # (lavapipe's default is one vec4 per thread; real GPUs loop over 2^18 threads).
  for v in $variants; do
    grid=""
    if [ "$v" = regblock ]; then grid=4096; fi
    echo "== again with WGFLOW_KERNEL=$v${grid:+ WGFLOW_GRID_THREADS=$grid}"
    WGFLOW_GRID_THREADS=$grid WGFLOW_KERNEL=$v cargo test --features mpi --test gpu_elementwise --test golden_elementwise --test golden_conv2d --test golden_linalg_reduce --test golden_gradients \
      --test fusion --test gpu_nn --test gpu_linalg_reduce --test kernel_variants -- --nocapture 2>&1
  done
fi
