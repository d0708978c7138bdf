#!/usr/bin/env bash
# Release check, run by CI after the tests: the sdist and wheel build, each installs into a
# clean virtual environment and works from outside the source tree (data files come from the
# package, not the checkout), and install.sh installs and upgrades for real on the CPU path.
#
#   packaging/check_release.sh [PYTHON]      (default: .venv/bin/python, which has `build`)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
python="${1:-$root/.venv/bin/python}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Keep pip's cache (built llama-cpp-python wheels) when HOME moves to the scratch folder.
pip_cache="$("$python" -m pip cache dir 2>/dev/null || true)"
[ -z "$pip_cache" ] || export PIP_CACHE_DIR="$pip_cache"
export HOME="$work/home" XDG_DATA_HOME="$work/home/data" XDG_CACHE_HOME="$work/home/cache" \
    XDG_CONFIG_HOME="$work/home/config" HF_HUB_OFFLINE=1
mkdir -p "$HOME"
step() { printf '\n== %s\n' "$*"; }

step "build the sdist and the wheel"
"$python" -m build --sdist --wheel --outdir "$work/dist" "$root" >"$work/build.log" 2>&1 \
    || { cat "$work/build.log"; exit 1; }
wheel="$(ls "$work"/dist/*.whl)"
sdist="$(ls "$work"/dist/*.tar.gz)"
echo "$(basename "$wheel") $(basename "$sdist")"

step "the data files are in both"
"$python" - "$wheel" "$sdist" <<'EOF'
import sys, tarfile, zipfile
wheel = set(zipfile.ZipFile(sys.argv[1]).namelist())
sdist = {n.split("/", 1)[1] for n in tarfile.open(sys.argv[2]).getnames() if "/" in n}
themes = ["reflect-dark.toml", "reflect-paper.toml", "reflect-contrast.toml"]
# The catalog and themes sit at the project root; the wheel carries them inside the package.
need = ["reflectchat/models.toml", *(f"reflectchat/themes/{t}" for t in themes),
        "reflectchat/ui/app.tcss"]
missing = [f"wheel: {n}" for n in need if n not in wheel]
missing += [f"sdist: {n}" for n in ["models.toml", *(f"themes/{t}" for t in themes),
                                     "reflectchat/ui/app.tcss", "packaging/install.sh"]
            if n not in sdist]
links = [m.name for m in tarfile.open(sys.argv[2]).getmembers() if m.issym() or m.islnk()]
if missing or links:
    sys.exit(f"missing: {', '.join(missing)}; links: {', '.join(links)}")
print(f"ok: {len(need)} data files in the wheel, and the sdist carries them and packaging/")
EOF

check_install() {  # $1: what to pip install, $2: a name for the venv
    local venv="$work/$2"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "$1"
    (
        cd "$work"  # away from the source tree
        "$venv/bin/reflectchat" --version
        "$venv/bin/reflectchat" ask --demo --json --no-save \
            "Solve the equation: 2x^2 + 5x - 3 = 0" >"$work/$2.json"
        "$venv/bin/python" - "$work/$2.json" <<'EOF'
import json, sys
answer = json.load(open(sys.argv[1]))
assert "x = 1/2" in answer["output"] and answer["reflections"], answer
print("ok: the demo answered, with", len(answer["reflections"]), "reflection(s)")
EOF
    )
}

step "the wheel in a clean venv"
check_install "$wheel" wheel-venv

step "the sdist in a clean venv"
check_install "$sdist" sdist-venv

step "install.sh --cpu, for real, then again to upgrade in place"
for round in first second; do
    bash packaging/install.sh --cpu --python "$python" --source "$wheel" >"$work/install-$round.log" 2>&1 \
        || { cat "$work/install-$round.log"; exit 1; }
    "$HOME/.local/bin/reflectchat" --version
done
"$HOME/.local/bin/reflectchat" doctor
echo
echo "release check passed"
