"""simlab's offline recognizers for WER (implemented in `simlab.metrics.asr`)."""
from __future__ import annotations

from simlab.metrics.asr import fw_settings, fw_transcribe, ps_settings, ps_transcribe
from simlab.registry import RecognizerEntry

POCKETSPHINX = RecognizerEntry("pocketsphinx", ps_transcribe, ps_settings)
FASTER_WHISPER = RecognizerEntry("faster-whisper", fw_transcribe, fw_settings)
