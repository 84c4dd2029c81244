"""Find the system libraries Qt's xcb platform plugin needs and this machine lacks.

Without them the studio aborts at start with Qt's "could not load the Qt platform plugin
xcb", and the message does not say which library is missing. ``make run`` runs this
first: ``ldd`` on the plugin lists every library that is "not found" (transitively), and
the user gets the one ``apt-get install`` line that fixes it (README: Fedora and Arch).

Pure standard library, no Qt import (the check must work where Qt cannot start).
``python -m spfde_gui.system.qt_libs`` exits 0 when nothing is missing, 1 otherwise.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# soname -> Debian/Ubuntu package. The xcb plugin's full set (Qt 6.5+), so README and
# this table agree; a soname not listed is reported by name.
DEBIAN_PACKAGES = {
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-image.so.0": "libxcb-image0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0", "libxkbcommon.so.0": "libxkbcommon0",
    "libxcb-shape.so.0": "libxcb-shape0", "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-shm.so.0": "libxcb-shm0", "libxcb-render.so.0": "libxcb-render0",
    "libxcb-util.so.1": "libxcb-util1", "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0", "libxcb-glx.so.0": "libxcb-glx0",
    "libX11-xcb.so.1": "libx11-xcb1", "libX11.so.6": "libx11-6", "libxcb.so.1": "libxcb1",
    "libSM.so.6": "libsm6", "libICE.so.6": "libice6", "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1", "libOpenGL.so.0": "libopengl0", "libGLX.so.0": "libglx0",
    "libfontconfig.so.1": "libfontconfig1", "libfreetype.so.6": "libfreetype6",
    "libdbus-1.so.3": "libdbus-1-3", "libglib-2.0.so.0": "libglib2.0-0",
}
_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found", re.MULTILINE)


def xcb_plugin() -> Path | None:
    """Path of PySide6's libqxcb.so, without importing Qt (None if PySide6 is absent)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        for sub in ("Qt/plugins/platforms/libqxcb.so", "plugins/platforms/libqxcb.so"):
            p = Path(root) / sub
            if p.is_file():
                return p
    return None


def missing_from_ldd(output: str) -> list[str]:
    """The sonames ``ldd`` reports as not found, in order, once each."""
    return list(dict.fromkeys(_NOT_FOUND.findall(output)))


def missing_libraries(plugin: Path | None = None) -> list[str]:
    plugin = plugin or xcb_plugin()
    if plugin is None or shutil.which("ldd") is None:
        return []
    res = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=60, check=False)
    return missing_from_ldd(res.stdout + res.stderr)


def apt_line(missing: list[str]) -> str:
    pkgs = list(dict.fromkeys(DEBIAN_PACKAGES.get(s, s) for s in missing))
    return "sudo apt-get install " + " ".join(pkgs)


def uses_xcb(env=os.environ) -> bool:
    """Whether Qt will try the xcb plugin here (an X display and no other platform chosen)."""
    plat = env.get("QT_QPA_PLATFORM", "")
    if plat:
        return plat.split(":")[0].split(";")[0] == "xcb"
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def main(argv: list[str] | None = None) -> int:
    if sys.platform != "linux" or not uses_xcb():
        return 0
    missing = missing_libraries()
    if not missing:
        return 0
    print("The studio cannot open a window: Qt's xcb platform plugin needs system libraries "
          "this machine lacks:\n  " + " ".join(missing), file=sys.stderr)
    print("On Debian/Ubuntu, install them with:\n  " + apt_line(missing), file=sys.stderr)
    print("(Fedora, Arch and the full list: README, section 'System libraries for the window'.)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
