#!/usr/bin/env bash
# One entry point that installs what it needs on first use, then runs:
#   bash run.sh demo          napari with the sample image, segmented, widgets docked
#   bash run.sh test [ARGS]   the test suite (under Xvfb, so napari can draw headless)
#   bash run.sh test-pyqt5 [ARGS]   tests again under the PyQt5 binding (CI runs the viewer's)
#   bash run.sh napari-unet ARGS   the CLI (segment, train, finetune, info, demo)
#   bash run.sh lint          ruff check (CI runs it before the tests)
#   bash run.sh bench NAME    a script from benchmarks/
set -euo pipefail
cd "$(dirname "$0")"
VENV=${NAPARI_UNET_VENV:-.venv}
PY=$VENV/bin/python
export QT_API=${QT_API:-pyqt6}  # napari's default binding (PyQt5 is deprecated there)
export PYTEST_QT_API=$QT_API    # pytest-qt picks its own otherwise, and qtpy follows what is imported

need_root() { if [ "$(id -u)" != 0 ]; then echo "sudo"; fi; }

system_deps() {
  # Xvfb + Mesa: napari's canvas needs OpenGL even with no display.
  command -v xvfb-run >/dev/null 2>&1 && [ -e /usr/lib/x86_64-linux-gnu/libxcb-cursor.so.0 -o -e /usr/lib/aarch64-linux-gnu/libxcb-cursor.so.0 ] && return
  command -v apt-get >/dev/null 2>&1 || { echo "run.sh: install Xvfb and Mesa (libGL) with your package manager" >&2; exit 1; }
  echo "run.sh: installing Xvfb and Mesa (once)..." >&2
  $(need_root) apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $(need_root) apt-get install -y -qq xvfb xauth libgl1-mesa-dri libglx-mesa0 \
    libegl1 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
    libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libdbus-1-3 >/dev/null
}

python_deps() {
  local stamp=$VENV/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)
  [ -f "$stamp" ] && return
  echo "run.sh: creating $VENV and installing napari-unet with its extras (once, ~3 min)..." >&2
  [ -x "$PY" ] || python3 -m venv "$VENV"
  local pipq="$PY -m pip install -q --disable-pip-version-check"
  # torch first, pinned to the release that this machine kind serves from local disk
  $pipq "torch==2.14.1" "torchvision==0.29.1" 2> >(grep -v "^WARNING: Location" >&2)
  $pipq -e ".[pyqt6,testing,export]" 2> >(grep -v "^WARNING: Location" >&2)
  $pipq --no-deps "bioimageio.core==0.11.0" 2> >(grep -v "^WARNING: Location" >&2)  # --no-deps: see the export extra
  rm -f "$VENV"/.installed-*; touch "$stamp"
}

pyqt5_deps() {
  # The second binding in a venv of its own that sees $VENV's packages (a .pth runs
  # site.addsitedir on them): $VENV stays a default install, with PyQt6 only.
  local V5=$VENV-pyqt5
  python_deps
  [ -f "$V5/.ready" ] && return
  echo "run.sh: creating $V5 with PyQt5 over $VENV (once)..." >&2
  python3 -m venv "$V5"
  local base; base=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  echo "import site; site.addsitedir('$base')" > "$("$V5/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/zz_napari_unet_base.pth"
  "$V5/bin/python" -m pip install -q --disable-pip-version-check "PyQt5>=5.15" 2> >(grep -v "^WARNING: Location" >&2)
  touch "$V5/.ready"
}

in_xvfb() {
  if [ -n "${DISPLAY:-}" ]; then "$@"; else xvfb-run -a -s "-screen 0 1600x1000x24" "$@"; fi
}

cmd=${1:-help}; shift || true
case "$cmd" in
  demo)
    python_deps
    if [ -z "${DISPLAY:-}" ]; then
      system_deps
      echo "run.sh: no display: running the demo under Xvfb and saving a screenshot to demo.png" >&2
      in_xvfb "$VENV/bin/napari-unet" demo --screenshot demo.png "$@"
    else
      "$VENV/bin/napari-unet" demo "$@"
    fi ;;
  test)
    python_deps; system_deps
    in_xvfb "$PY" -m pytest -q -p no:cacheprovider "$@" ;;
  test-pyqt5)
    pyqt5_deps; system_deps
    QT_API=pyqt5 PYTEST_QT_API=pyqt5 in_xvfb "$VENV-pyqt5/bin/python" -m pytest -q -p no:cacheprovider "$@" ;;
  lint)
    python_deps; "$VENV/bin/ruff" check . ;;
  napari-unet|cli)
    python_deps; "$VENV/bin/napari-unet" "$@" ;;
  bench)
    python_deps; name=$1; shift; in_xvfb "$PY" "benchmarks/$name.py" "$@" ;;
  *)
    sed -n '2,9p' "$0"; exit 2 ;;
esac
