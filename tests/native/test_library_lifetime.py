"""The shim stays mapped for the life of the process, even after its cffi handle is closed.

Why: at interpreter shutdown cffi frees its handle and dlcloses. If that unmapped the shim while
the Dispatch threads of a compile abandoned by cancel were still inside it, the process crashed
on exit (seen in CI: rc 139 after every test had passed; the core showed those threads waiting on
futexes in the unmapped library). The library is opened with RTLD_NODELETE.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import sys
from pathlib import Path
import mlx_audio_coreml
from mlx_audio_coreml.native import binding
path = Path(sys.argv[1]).resolve()
lib = binding.NativeLibrary(path)
binding.ffi.dlclose(lib._lib)  # what cffi does to the handle at interpreter shutdown
print("mapped" if str(path) in open("/proc/self/maps").read() else "unmapped")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_closing_the_cffi_handle_leaves_the_shim_mapped(standin_path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(standin_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "mapped"
