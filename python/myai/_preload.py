"""Loads the system C++ runtime, globally, before any extension that embeds its own.

usearch's wheel links libstdc++ statically, and its copies of the C++ runtime's process-unique
symbols (locale facet ids) then win over the system library's: llama.cpp, loaded later, fails
to read a model's vocabulary with ``std::bad_cast``. With the system runtime loaded first, both
libraries agree on it. ``myai/__init__`` imports this module before anything else.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys

# Whether an extension with its own C++ runtime got in first (then the clash can still happen:
# onnxruntime, loaded after usearch, crashes at import).
TOO_LATE = "usearch.compiled" in sys.modules

if sys.platform.startswith("linux"):
    with contextlib.suppress(OSError):  # no system C++ runtime: nothing in the process uses it
        ctypes.CDLL("libstdc++.so.6", mode=ctypes.RTLD_GLOBAL)
