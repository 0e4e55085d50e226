"""received.wav and reference.wav, streamed frame by frame and time-aligned: the received
stream is advanced by the codec's algorithmic delay, so sample i of both is the same instant."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


class AudioPair:
    def __init__(self, folder: Path, sample_rate: int, frame_samples: int, delay_samples: int = 0):
        self.frame_samples = frame_samples
        self._ref = sf.SoundFile(str(folder / "reference.wav"), "w", sample_rate, 1, "PCM_16")
        self._rx = sf.SoundFile(str(folder / "received.wav"), "w", sample_rate, 1, "PCM_16")
        self._skip = int(delay_samples)
        self._ref_n = self._rx_n = 0

    def reference(self, source, n_frames: int) -> None:
        for n in range(n_frames):
            x = np.clip(source(n), -1, 1)
            self._ref.write(x)
            self._ref_n += len(x)

    def play(self, n: int, audio) -> None:
        if audio is None:
            audio = np.zeros(self.frame_samples, dtype=np.float32)
        x = np.clip(np.asarray(audio, dtype=np.float32), -1, 1)
        if self._skip:
            cut = min(self._skip, len(x))
            x, self._skip = x[cut:], self._skip - cut
        self._rx.write(x)
        self._rx_n += len(x)

    def close(self) -> None:
        if self._rx_n < self._ref_n:  # the delayed tail never came out of the codec
            self._rx.write(np.zeros(self._ref_n - self._rx_n, dtype=np.float32))
        self._ref.close()
        self._rx.close()
