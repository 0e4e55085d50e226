"""Token loss on whole utterances, offline, with the system's real parts: Mimi's streaming
codec, the concealers of `simlab.actors.concealer` and the controllers of
`simlab.actors.controller`. Used by `simlab train evaluate`.

Packetisation is the simulator's own (`simlab.sim.packetizer.Packetizer`, as the simulation's
default): a packet carries ``frames_per_packet`` frames' first copies; the second copy of an
m = 2 token travels in the next packet. A token arrives if any packet holding a copy of it
arrives. Tokens never sent stay absent (-1) for the decoder; the LM concealer, like the
receiver in `simlab.actors.largesc`, predicts every token that did not arrive and the decoder
uses its predictions only for tokens that were sent.
"""
from __future__ import annotations

import numpy as np
import torch

from simlab.actors.concealer import DropConcealer, LMConcealer, RepeatConcealer
from simlab.actors.largesc import TOKEN_BITS
from simlab.actors.mimi import MimiCodec
from simlab.models.mimi_config import FRAME_SAMPLES
from simlab.packets import header_profile, layout_of, mask_array
from simlab.sim.packetizer import Packetizer

MISSING = -1


def encode(codec: MimiCodec, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Streaming encode: (tokens [T, 8], latents [T, 512], audio zero-padded to T frames)."""
    frames = -(-len(audio) // FRAME_SAMPLES)
    x = np.zeros(frames * FRAME_SAMPLES, dtype=np.float32)
    x[:len(audio)] = audio
    codec.reset()
    pairs = [codec.encode(x[n * FRAME_SAMPLES:(n + 1) * FRAME_SAMPLES]) for n in range(frames)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]), x


def decode(codec: MimiCodec, tokens: np.ndarray) -> np.ndarray:
    """Streaming decode of [T, 8] tokens (-1 = absent, left out of the codebook sum)."""
    codec.reset()
    return np.concatenate([codec.decode(row) for row in tokens.astype(np.int64)])


def arrivals(masks: np.ndarray, lost_packets: np.ndarray, frames_per_packet: int) -> np.ndarray:
    """[T, K] bool: token arrived, for masks m ∈ {0,1,2} ([T, K]) and per-packet losses.

    The frames go through the simulator's `Packetizer` as the sender hands them over (one
    group of ``frames_per_packet`` frames at a time, no interleaving, redundancy ``next``, the
    last group's second copies flushed into a packet of their own). ``lost_packets`` is indexed
    by packet slot: ``lost_packets[g]`` is the loss of the packet made for group g (frames
    g·F .. g·F + F − 1), ``lost_packets[ceil(T / F)]`` that of the closing packet, so it needs
    ceil(T / F) + 1 entries. A group with nothing to carry (no token sent, no second copy
    waiting) makes no packet and its slot's draw goes unused; the simulator's link would give
    that draw to the next packet instead (one decision per packet sent)."""
    masks = np.asarray(masks)
    T, K = masks.shape
    F = int(frames_per_packet)
    packetizer = Packetizer(0, F, interleave=False, redundancy="next", headers=header_profile("ipv4"))
    unit_bits = np.full(K, TOKEN_BITS, dtype=np.int64)
    layouts = {n: layout_of(masks[n], unit_bits) for n in range(T)}
    side_bits = dict.fromkeys(range(T), 0)
    made = []  # (slot, packet)
    starts = range(0, T, F)
    for g, start in enumerate(starts):
        made += [(g, pkt) for pkt in packetizer.packets(list(range(start, min(start + F, T))), layouts, side_bits)]
    made += [(len(starts), pkt) for pkt in packetizer.flush(side_bits)]
    arrived = np.zeros((T, K), dtype=bool)
    for slot, pkt in made:
        if not lost_packets[slot]:
            for frame, unit_mask, _count, _bits in pkt.contents:
                arrived[frame] |= mask_array(unit_mask, K)
    return arrived


def conceal(kind: str, tokens: np.ndarray, arrived: np.ndarray, lm=None, min_confidence: float = 0.0) -> np.ndarray:
    """[T, 8] tokens as a concealer ``kind`` ('lm', 'repeat', 'drop') fills the ones that did
    not arrive (-1 where it leaves them absent). Received tokens are unchanged.
    ``min_confidence``: the LM concealer's (`LMConcealer`)."""
    received = np.where(arrived, tokens, MISSING).astype(np.int64)
    T, K = received.shape
    if kind == "drop":
        concealer = DropConcealer(K)
        return np.stack([concealer.conceal(row) for row in received])
    if kind == "repeat":
        concealer = RepeatConcealer(K)
        return np.stack([concealer.conceal(row) for row in received])
    if kind != "lm":
        raise ValueError(f"concealer {kind!r}: expected 'lm', 'repeat' or 'drop'")
    concealer = LMConcealer(lm, min_confidence=min_confidence)
    out = received.copy()
    prev = np.full(K - 1, MISSING, dtype=np.int64)
    for n in range(T + 1):  # step T completes frame T-1's acoustic tokens
        semantic = int(received[n, 0]) if n < T else MISSING
        sem, acoustic = concealer.step(semantic, prev)
        if n < T:
            out[n, 0] = sem
            prev = received[n, 1:]
        if n > 0:
            out[n - 1, 1:] = acoustic
    return out


def decoder_tokens(tokens: np.ndarray, masks: np.ndarray, arrived: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """What the decoder gets: arrived tokens, concealed ones where sent but lost, -1 where never sent."""
    lost = (masks >= 1) & ~arrived
    return np.where(arrived, tokens, np.where(lost, filled, MISSING))


def latent_error(codec: MimiCodec, tokens: np.ndarray, received: np.ndarray, lost: np.ndarray) -> tuple[float, float]:
    """(Σ‖ẑ − z‖², Σ‖z‖²) over the frames with a ``lost`` token: z the quantized latent of the
    frame's ``tokens`` (what was sent), ẑ that of what the decoder gets (``received``, -1 = left out).
    Their ratio is the concealment's latent NMSE: 1 when lost frames are left out entirely,
    below 1 only where concealment brings the latent closer than leaving the tokens out."""
    err = ref = 0.0
    with torch.inference_mode():
        for n in np.nonzero(lost.any(axis=1))[0]:
            z = codec.latent(tokens[n]).float()
            err += float(((codec.latent(received[n]).float() - z) ** 2).sum())
            ref += float((z ** 2).sum())
    return err, ref


def controller_masks(controller, latents: np.ndarray, p_hat: float, quantizers: int) -> np.ndarray:
    """[T, 8] masks of a controller (`AdaptiveController` or `FixedController`) over an utterance."""
    controller.reset()
    return np.stack([controller.decide(z, p_hat, quantizers) for z in latents]).astype(np.int64)
