"""One compute device shared by several calls whose frames are batched (``compute.batch``):
the frames due at one instant form one batch, which occupies the device once; batches queue
in arrival order. `share_compute` wires a batched system's calls to it."""
from __future__ import annotations


class BatchDevice:
    """A FIFO server (as `simlab.sim.clock.Fifo`) for ``members`` calls in lockstep: each call
    asks to be served at each instant once, with its batch's time; the first ask at an instant
    serves the batch, the others get the same (start, end)."""

    __slots__ = ("members", "free_s", "busy_s", "_slots")

    def __init__(self, members: int):
        self.members = members
        self.free_s = 0.0
        self.busy_s = 0.0
        self._slots: dict[float, list] = {}  # instant -> [start, end, members still to ask]

    def serve(self, t: float, service_s: float) -> tuple[float, float]:
        slot = self._slots.get(t)
        if slot is None:
            start = t if t > self.free_s else self.free_s
            self.free_s = start + service_s
            self.busy_s += service_s
            slot = self._slots[t] = [start, self.free_s, self.members]
        slot[2] -= 1
        if slot[2] <= 0:  # every call has had it: forget the instant (memory stays bounded)
            del self._slots[t]
        return slot[0], slot[1]


class ReceiverWindow:
    """What ``receiver`` will see of its frames when it releases frame ``n`` (its `get` then):
    frames up to n + its lookahead, as they have arrived so far."""

    def __init__(self, receiver, n: int):
        self.receiver, self.limit = receiver, n + receiver.lookahead_frames

    def get(self, m: int):
        return None if m > self.limit else self.receiver.monitor.received(m)


def share_compute(group, flows: list) -> None:
    """Flow b is row b of ``group`` (a batched system, `simlab.actors.largesc_batch`): the group
    reads the other calls' audio and windows through these hooks, and every sender serves on one
    TX `BatchDevice`, every receiver on one RX `BatchDevice`. ValueError when the calls are not in
    lockstep (their frames would not fall due at the same instants)."""
    if len({f.start_s for f in flows}) > 1:
        raise ValueError("the calls start at different times (network.start_offsets)")
    if any(f.receiver.playout.adaptive for f in flows):
        raise ValueError("an adaptive jitter buffer releases each call's frames at its own times")
    tx, rx = BatchDevice(len(flows)), BatchDevice(len(flows))
    for f in flows:
        f.sender.device, f.receiver.device = tx, rx
    expect = getattr(group, "expect_frames", None)
    if expect is not None:  # the group may size its state for the calls' length
        expect(max(f.receiver.n_frames for f in flows))
    group.audio_of = lambda b, n: flows[b].sender.audio(n)
    group.window_of = lambda b, n: ReceiverWindow(flows[b].receiver, n)
