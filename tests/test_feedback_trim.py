"""p-hat is the latest report that had arrived by the time asked, even after the list of reports
that reached the sender is trimmed (every 1024) at an arrival later than a frame still to be asked
about (its group's wake comes after that arrival)."""
from simlab.sim.estimators import Ewma
from simlab.sim.feedback import Feedback
from simlab.sim.link import Link


class _Pkt:
    def __init__(self, seq):
        self.seq = seq


def test_a_trim_at_a_later_arrival_keeps_the_answer_for_an_earlier_frame():
    import simpy

    from channels.schedule import Schedule
    from channels.uniform import Uniform
    import numpy as np

    env = simpy.Environment()
    reverse = Link(env, bandwidth_bps=1e9, delay_s=0.005, loss=Schedule([], Uniform(0.0, np.random.default_rng(0))))
    fb = Feedback(0.01, 2, Ewma(1.0), reverse)  # each report says the last interval's loss
    seq = 0
    for k in range(1, 1030):  # a packet every 10 ms, every other one lost until 10.2 s, none after
        t = k * 0.01 - 0.002
        if t > 10.2 or k % 2:
            fb.arrived(t, _Pkt(seq))
        seq += 1
    # reports to 10.29 s are made; p-hat changed from 0.5 to 0 when the 10.21 s report arrived (10.215)
    assert fb.p_hat(10.2) > 0.4  # the sender asks about a frame captured before that arrival
    assert fb.p_hat(10.25) == 0.0
