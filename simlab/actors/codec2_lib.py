"""libcodec2 through the `pycodec2` wheel (which bundles it): loading, modes, and the decoder's
noise generator made per decoder.

libcodec2 synthesises unvoiced harmonics with random phases from ``codec2_rand()``, a linear
congruential generator whose state is one static variable of the library: shared by every
decoder in the process and seeded 1 when the library loads. A decoder's output therefore
depended on whatever other decoders had run in the same process before (a batch worker, a
test session, a second flow). `NoiseState` gives each decoder its own generator state,
starting at 1 like a fresh ``c2dec`` process: swapped into the library around each decode.
"""
from __future__ import annotations

import ctypes

from simlab.errors import UserError

#: The modes libcodec2 knows, and the pycodec2 constructor argument of each one it binds.
#: libcodec2 1.2 (the one pycodec2 4.x bundles) has no 450 or 450PWB coder.
MODES = {"3200": 3200, "2400": 2400, "1600": 1600, "1400": 1400, "1300": 1300, "1200": 1200, "700C": 700}
SAMPLE_RATE = 8000
#: Samples the decoded speech lags the input. Every mode analyses 10 ms subframes with a
#: window centred 160 samples behind the newest input sample, and its overlap-add synthesis
#: ends each 10 ms of output at the current subframe's centre: 160 samples (20 ms). 700C
#: interpolates its subframes from the previous frame's parameters (weights 1 - i/4), one
#: subframe (80 samples) later: 240. Checked by correlating energy envelopes (tests).
DELAY_SAMPLES = {m: 160 for m in MODES} | {"700C": 240}

INSTALL = "codec2 needs the Python package pycodec2 (it bundles libcodec2): pip install pycodec2"


def load():
    """The ``pycodec2`` module, or a one-line `UserError` saying what to install."""
    try:
        import pycodec2
    except ImportError:
        raise UserError(INSTALL) from None
    return pycodec2


def versions(pycodec2) -> str:
    """``pycodec2 X (libcodec2 Y)`` as far as they can be told."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ver = version("pycodec2")
    except PackageNotFoundError:
        ver = "unknown"
    lib = _loaded_library()
    so = lib.rsplit(".so.", 1)[1] if lib and ".so." in lib else "unknown"
    return f"pycodec2 {ver} (libcodec2 {so})"


def _loaded_library() -> str | None:
    """The path of the libcodec2 this process has loaded (Linux: /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.rstrip("\n").split(None, 5)[-1]
                if "libcodec2" in path.rsplit("/", 1)[-1]:
                    return path
    except OSError:
        pass
    return None


# codec2_rand() on x86-64 begins `imul $1103515245, next(%rip), %rax`: 48 69 05 <disp32> <imm32>.
_IMUL_RIP = bytes.fromhex("486905")
_MULTIPLIER = (1103515245).to_bytes(4, "little")


def _locate_seed() -> ctypes.c_uint64 | None:
    """libcodec2's static generator state, found through the instruction of ``codec2_rand``
    that reads it, and checked by running the generator once from a known state. None where
    that does not work (another architecture or build): decoders then share the state."""
    path = _loaded_library()
    if path is None:
        return None
    try:
        lib = ctypes.CDLL(path)  # the handle of the already loaded library
        rand = lib.codec2_rand
    except (OSError, AttributeError):
        return None
    rand.restype = ctypes.c_int
    start = ctypes.cast(rand, ctypes.c_void_p).value
    code = ctypes.string_at(start, 11)
    if code[:3] != _IMUL_RIP or code[7:11] != _MULTIPLIER:
        return None
    seed = ctypes.c_uint64.from_address(start + 11 + int.from_bytes(code[3:7], "little", signed=True))
    saved = seed.value
    seed.value = 1
    ok = rand() == 16838 and seed.value == 1103527590  # next = 1 * 1103515245 + 12345
    seed.value = saved
    return seed if ok else None


_SEED: list = []  # [the located state or None], filled on first use


class NoiseState:
    """One decoder's state of libcodec2's noise generator; `run` calls a decode with it."""

    def __init__(self):
        if not _SEED:
            _SEED.append(_locate_seed())
        self._seed = _SEED[0]
        self.state = 1
        #: False where the library's state could not be found (decoders share it then).
        self.per_decoder = self._seed is not None

    def run(self, fn, *args):
        if self._seed is None:
            return fn(*args)
        self._seed.value = self.state
        try:
            return fn(*args)
        finally:
            self.state = self._seed.value
