"""The fate_trace link model: a per-packet record of delay or loss, replayed in order."""
import numpy as np
import pytest
import simpy

import simlab
from channels.uniform import Uniform
from simlab.errors import UserError
from simlab.packets import Packet
from simlab.sim.fate_trace import FateTraceLink, read_fates
from simlab.sim.link import LinkParams


def _link(delays, **kw):
    params = LinkParams(1e6, 0.5, Uniform(0.0, np.random.default_rng(0)), 0.3, None, np.random.default_rng(1))
    return FateTraceLink(simpy.Environment(), params, np.array(delays, dtype=float), **kw)


def _fates(link, n):
    out = []
    for i in range(n):
        p = Packet(0, i, "media", 40, 80, [])
        out.append(round(p.arrival_s - p.send_s, 9) if link.transmit(p, i * 0.02) else "lost")
    return out


def test_read_fates(tmp_path):
    f = tmp_path / "f.csv"
    f.write_text("# captured somewhere\nseq,delay_s\n7,0.031\n8,lost\n9,\n10,0.5\n")
    d = read_fates(f)
    assert d[0] == 0.031 and np.isnan(d[1]) and np.isnan(d[2]) and d[3] == 0.5
    for text, message in [("a,b\n1,2\n", "header seq,delay_s"), ("seq,delay_s\n1,-0.1\n", "row 2: delay_s '-0.1'"),
                          ("seq,delay_s\n", "no packets"), ("seq,delay_s\n1,soon\n", "row 2")]:
        f.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_fates(f)


def test_replay_in_order_loop_and_after_end():
    # The link section's bandwidth, delay (0.5 s) and jitter are not used: the record holds them.
    assert _fates(_link([0.01, np.nan, 0.03]), 7) == [0.01, "lost", 0.03, 0.01, "lost", 0.03, 0.01]
    assert _fates(_link([0.01, 0.02], loop=False, after_end="lost"), 4) == [0.01, 0.02, "lost", "lost"]
    assert _fates(_link([0.01, 0.02, np.nan], loop=False, after_end="last_delay"), 5) == [0.01, 0.02, "lost",
                                                                                          0.02, 0.02]


def test_spec_needs_after_end_without_loop(tmp_path):
    f = tmp_path / "f.csv"
    f.write_text("seq,delay_s\n0,0.01\n")
    with pytest.raises(UserError, match="loop: false needs after_end"):
        simlab.load_scenario({"network": {"forward": {"link": {"model": "fate_trace", "file": str(f),
                                                               "loop": False}}}})
