"""Training's offline packetization (`simlab.train.simulate.arrivals`): the simulator's
`Packetizer` decides which copies share a packet, and the result is the formula it replaced."""
import numpy as np


def test_arrivals_second_copy_in_next_packet():
    from simlab.train.simulate import arrivals

    masks = np.array([[2, 1, 0], [2, 1, 0], [1, 1, 1], [2, 2, 2]])
    lost = np.array([True, False, True])  # packet 0 lost, packet 1 arrives, packet 2 lost
    got = arrivals(masks, lost, frames_per_packet=2)
    expected = np.array([[1, 0, 0], [1, 0, 0], [1, 1, 1], [1, 1, 1]], dtype=bool)
    assert (got == expected).all()


def _arrivals_by_formula(masks, lost_packets, frames_per_packet):
    """`arrivals` as it was written before it used the simulator's `Packetizer`: frame n's first
    copies in packet slot n // F, its second copies in the slot after."""
    packet = np.arange(masks.shape[0]) // frames_per_packet
    return (masks >= 1) & ~lost_packets[packet][:, None] | (masks >= 2) & ~lost_packets[packet + 1][:, None]


def test_arrivals_through_the_packetizer_equal_the_formula_on_random_masks_and_losses():
    """Random masks (frames and whole packet groups with nothing sent included) and losses, as
    the callers draw them (T // F + 2 per-slot losses): identical to the formula. A group that
    sends nothing makes no packet in the `Packetizer`; its slot's loss goes unused in both."""
    from simlab.train.simulate import arrivals

    rng = np.random.default_rng(0)
    empty_groups = 0
    for trial in range(400):
        F = int(rng.integers(1, 5))
        T = int(rng.integers(0, 25))
        K = 8 if trial % 2 else int(rng.integers(1, 9))
        masks = rng.choice(3, size=(T, K), p=rng.dirichlet([1.0, 1.0, 1.0]))
        masks[rng.random(T) < 0.3] = 0  # silent frames: nothing sent
        if T and rng.random() < 0.3:
            g = int(rng.integers(0, -(-T // F)))
            masks[g * F:(g + 1) * F] = 0  # a whole group silent
        # groups that make no packet: nothing sent and no second copy carried from the group before
        empty_groups += sum(not masks[i:i + F].any() and not (masks[max(i - F, 0):i] == 2).any()
                            for i in range(0, T, F))
        lost = rng.random(T // F + 2) < rng.random()
        assert np.array_equal(arrivals(masks, lost, F), _arrivals_by_formula(masks, lost, F)), (F, masks, lost)
    assert empty_groups > 50
