#!/usr/bin/env bash
# Install (or upgrade) reflectchat as an isolated tool, with llama.cpp built for this machine's
# accelerator. PyPI has only llama-cpp-python's source, and a plain `pip install` silently
# builds a CPU-only engine; this script picks the build flags first.
#
#   packaging/install.sh                 detect the accelerator and install
#   packaging/install.sh --cuda          force a backend: --cpu --cuda --metal --rocm --vulkan
#   packaging/install.sh --dry-run       print what would be done, change nothing
#   packaging/install.sh --desktop       also add a desktop entry and icon (Linux)
#   packaging/install.sh --python PY     use this Python (default: python3)
#   packaging/install.sh --source SPEC   install SPEC (default: this checkout, else "reflectchat")
#
# Installs with `uv tool` if uv is present, else `pipx`, else a virtual environment in
# ~/.local/share/reflectchat/venv linked from ~/.local/bin. Running it again upgrades in place.
set -euo pipefail

MIN_PYTHON="3.10"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
backend=""
dry_run=0
desktop=0
python="${PYTHON:-python3}"
source_spec=""

say() { printf '%s\n' "$*"; }
fail() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --cpu|--cuda|--metal|--rocm|--vulkan) backend="${1#--}" ;;
        --dry-run) dry_run=1 ;;
        --desktop) desktop=1 ;;
        --python) shift; [ $# -gt 0 ] || fail "--python needs a value"; python="$1" ;;
        --source) shift; [ $# -gt 0 ] || fail "--source needs a value"; source_spec="$1" ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) fail "unknown option $1 (see --help)" ;;
    esac
    shift
done

# A command, shown as it will run (with the build flags), then run unless --dry-run.
run() {
    local shown=""
    [ -n "${CMAKE_ARGS:-}" ] && shown="CMAKE_ARGS=\"$CMAKE_ARGS\" "
    say "+ $shown$*"
    [ "$dry_run" -eq 1 ] || "$@"
}

# -- Python ----------------------------------------------------------------------------------
command -v "$python" >/dev/null 2>&1 || fail "$python not found; install Python >= $MIN_PYTHON or pass --python"
py_version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
    fail "reflectchat needs Python >= $MIN_PYTHON; $python is $py_version (pass --python with a newer one)"
fi

# -- accelerator -----------------------------------------------------------------------------
detect() {
    if [ "$(uname -s)" = "Darwin" ] && [ "$(uname -m)" = "arm64" ]; then
        echo metal
    elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        echo cuda
    # grep reads all of rocminfo's output (grep -q would leave early, and under pipefail the
    # SIGPIPE rocminfo then gets made the test fail at random on a busy machine)
    elif command -v rocminfo >/dev/null 2>&1 && rocminfo 2>/dev/null | grep -c 'gfx[0-9]' >/dev/null; then
        echo rocm
    elif command -v vulkaninfo >/dev/null 2>&1 && vulkaninfo --summary >/dev/null 2>&1; then
        echo vulkan
    else
        echo cpu
    fi
}

chosen_by="detected"
if [ -z "$backend" ]; then backend="$(detect)"; else chosen_by="chosen with --$backend"; fi

cmake_args=""
case "$backend" in
    cpu) cmake_args="" ; what="CPU only" ;;
    metal) cmake_args="-DGGML_METAL=on" ; what="Apple Metal" ;;
    cuda)
        gpus="$(nvidia-smi -L 2>/dev/null | sed 's/ (UUID.*//' | paste -sd ';' - || true)"
        driver_cuda="$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -1 || true)"
        command -v nvcc >/dev/null 2>&1 || fail "an NVIDIA GPU needs the CUDA toolkit (nvcc) to build llama.cpp; install it (https://developer.nvidia.com/cuda-downloads), or use --cpu"
        toolkit="$(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
        cmake_args="-DGGML_CUDA=on"
        what="NVIDIA CUDA (toolkit ${toolkit:-unknown}, driver supports CUDA ${driver_cuda:-unknown}; ${gpus:-GPU})" ;;
    rocm)
        targets="$(rocminfo 2>/dev/null | grep -o 'gfx[0-9a-f]*' | sort -u | paste -sd ';' - || true)"
        cmake_args="-DGGML_HIP=on${targets:+ -DAMDGPU_TARGETS=$targets}"
        what="AMD ROCm (${targets:-unknown targets})" ;;
    vulkan) cmake_args="-DGGML_VULKAN=on" ; what="Vulkan" ;;
esac
say "Accelerator: $what ($chosen_by)"
say "Python: $python ($py_version)"

# -- what to install -------------------------------------------------------------------------
if [ -z "$source_spec" ]; then
    if [ -f "$here/../pyproject.toml" ] && grep -q '^name = "reflectchat"' "$here/../pyproject.toml"; then
        source_spec="$(cd "$here/.." && pwd)"
    else
        source_spec="reflectchat"
    fi
fi
say "Installing: $source_spec"

# A GPU build must not reuse a CPU wheel from the cache: the cache does not know the flags.
export CMAKE_ARGS="$cmake_args"
[ -n "$CMAKE_ARGS" ] || unset CMAKE_ARGS
gpu_build=""
[ "$backend" = "cpu" ] || gpu_build=1

data_home="${XDG_DATA_HOME:-$HOME/.local/share}"
bin_dir="$HOME/.local/bin"
if command -v uv >/dev/null 2>&1; then
    say "Installer: uv tool"
    run uv tool install --force --python "$python" ${gpu_build:+--no-cache} \
        ${gpu_build:+--reinstall-package llama-cpp-python} "$source_spec"
elif command -v pipx >/dev/null 2>&1; then
    say "Installer: pipx"
    run pipx install --force --python "$python" ${gpu_build:+--pip-args=--no-cache-dir} "$source_spec"
else
    venv="$data_home/reflectchat/venv"
    say "Installer: a virtual environment in $venv"
    run "$python" -m venv "$venv"
    run "$venv/bin/python" -m pip install --quiet --upgrade pip
    run "$venv/bin/python" -m pip install --upgrade ${gpu_build:+--no-cache-dir} \
        ${gpu_build:+--force-reinstall} "$source_spec"
    run mkdir -p "$bin_dir"
    run ln -sf "$venv/bin/reflectchat" "$bin_dir/reflectchat"
fi

# -- desktop entry ---------------------------------------------------------------------------
if [ "$desktop" -eq 1 ]; then
    [ "$(uname -s)" = "Linux" ] || fail "--desktop adds a freedesktop.org entry: Linux only"
    run mkdir -p "$data_home/applications" "$data_home/icons/hicolor/scalable/apps"
    run cp "$here/linux/reflectchat.desktop" "$data_home/applications/reflectchat.desktop"
    run cp "$here/linux/reflectchat.svg" "$data_home/icons/hicolor/scalable/apps/reflectchat.svg"
    if command -v update-desktop-database >/dev/null 2>&1; then
        run update-desktop-database "$data_home/applications"
    fi
fi

if [ "$dry_run" -eq 1 ]; then
    say "Dry run: nothing was changed."
else
    say "Done. Check the build with: reflectchat doctor"
    case ":$PATH:" in
        *":$bin_dir:"*) ;;
        *) say "Add $bin_dir to your PATH to run reflectchat from anywhere." ;;
    esac
fi
