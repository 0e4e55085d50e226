"""Frames -> packets: frames per packet, the paper's interleaver, and where the second copy of
an m = 2 unit travels (``same`` packet, ``next`` packet, or a packet of its ``own``)."""
from __future__ import annotations

from simlab.packets import (HeaderProfile, Packet, interleaved_contents, payload_bits, plain_contents,
                            second_copies)


class Packetizer:
    """Turns a group of encoded frames into packets, in sending order.

    A group is one packet's frames, or two packets' when interleaving (the swap pairs adjacent
    packets, so the first must wait for the second's frames: that wait shows in t_context).
    """

    def __init__(self, flow: int, frames_per_packet: int, interleave: bool, redundancy: str,
                 headers: HeaderProfile, second_copies: bool = True):
        self.flow = flow
        self.second_copies = second_copies  # False: the system never sends a unit twice
        self.frames_per_packet = frames_per_packet
        self.interleave = interleave
        self.redundancy = redundancy
        self.headers = headers
        self.group_frames = frames_per_packet * (2 if interleave else 1)
        self._seq = 0
        self._carry: list = []  # second copies waiting for the next packet (redundancy: next)

    @property
    def lookahead_frames(self) -> int:
        """Frames the receiver must wait beyond frame n for all of its copies to have been sent
        (none when the system never sends second copies: waiting for them would only add delay)."""
        return self.group_frames if self.redundancy == "next" and self.second_copies else 0

    def packets(self, frames: list[int], layouts: dict, side_bits: dict) -> list[Packet]:
        """``layouts[f]``/``side_bits[f]`` for the group's frames and those of the group before
        (copies carried into this one)."""
        F = self.frames_per_packet
        chunks = [frames[i:i + F] for i in range(0, len(frames), F)]
        if self.interleave and len(chunks) == 2 and len(chunks[0]) == len(chunks[1]):
            firsts = list(interleaved_contents(chunks[0], chunks[1], layouts))
        else:
            firsts = [plain_contents(c, layouts) for c in chunks]
        out = []
        for chunk, first in zip(chunks, firsts):
            second = second_copies(first, layouts)
            if self.redundancy == "same":
                out.append(self._make("media", first + second, side_bits, chunk[0]))
            elif self.redundancy == "next":
                out.append(self._make("media", first + self._carry, side_bits, chunk[0]))
                self._carry = second
            else:  # own
                out.append(self._make("media", first, side_bits, chunk[0]))
                if second:
                    out.append(self._make("redundant", second, side_bits, chunk[0]))
        return [p for p in out if p is not None]

    def flush(self, side_bits: dict) -> list[Packet]:
        """At the end of the call: second copies still waiting go in a packet of their own."""
        if not self._carry:
            return []
        pkt = self._make("redundant", self._carry, side_bits, self._carry[0][0])
        self._carry = []
        return [pkt]

    def _make(self, kind, contents, side_bits, first_frame) -> Packet | None:
        if not contents:
            return None  # nothing to carry (no unit sent): no header-only packet, as with DTX
        pkt = Packet(self.flow, self._seq, kind, self.headers.header_bytes(self._seq),
                     payload_bits(contents, side_bits), contents, first_frame)
        self._seq += 1
        return pkt
