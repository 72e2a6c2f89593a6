#!/usr/bin/env bash
# Build a wheel from the checkout, install it (not editable) into a fresh environment outside the
# checkout, and run robustrec with it: the package works as users install it, ships its example
# study files, and imports nothing from the checkout. The fresh environment borrows the
# dependencies already installed in .venv through a .pth line (robustrec itself comes from the
# wheel: an installed package is found before a .pth path), so no download is needed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-.venv/bin/python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# build from a copy of the tracked files, so the checkout gets no build/ or egg-info folders
git ls-files -z | tar --null -T - -cf - | (mkdir -p "$WORK/src" && tar -xf - -C "$WORK/src")
"$PY" -m pip wheel --quiet --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src" >/dev/null
python3 -m venv "$WORK/env"
"$WORK/env/bin/python" -m pip install --quiet --no-deps --no-index "$WORK"/dist/robustrec-*.whl
SITE=$("$WORK/env/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$SITE/robustrec-deps.pth"
cd "$WORK"
where=$("$WORK/env/bin/python" -c 'import robustrec; print(robustrec.__file__)')
case "$where" in "$WORK"/env/*) ;; *) echo "check_wheel: robustrec imported from $where, not the wheel"; exit 1;; esac
"$WORK/env/bin/robustrec" study examples --copy studies >/dev/null
ls studies/mg-lfm2k.toml >/dev/null
"$WORK/env/bin/robustrec" train --model bprmf --epochs 1 --threads 1 -q --data-dir data >/dev/null
"$WORK/env/bin/robustrec" perturb noise --sigma 1e-3 --repeats 2 -q >/dev/null
ls reports/noise-synthetic-*.json >/dev/null
echo "check_wheel: the wheel installs into a fresh environment and trains and perturbs outside the checkout ($ROOT untouched)"
