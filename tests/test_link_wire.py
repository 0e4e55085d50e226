"""What every link shares: link-layer overhead counted on the wire, packets over the MTU refused
(dropped, never fragmented), the defaults leaving runs and batch keys as they were, and the
``traces:`` prefix for the link traces beside the checkout."""
from pathlib import Path

import numpy as np
import pytest
import simpy

import simlab
from channels.uniform import Uniform
from simlab.batch.expand import run_key
from simlab.packets import Packet
from simlab.scenario import load_scenario
from simlab.sim.link import Link, LinkParams

TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces"


def test_overhead_is_serialized_and_the_mtu_refuses_larger_packets():
    params = LinkParams(8000, 0.01, Uniform(0.0, np.random.default_rng(0)), overhead_bytes=38, mtu_bytes=200)
    link = Link(simpy.Environment(), params)
    a, b, big = (Packet(0, i, "media", 40, 8 * n, []) for i, n in enumerate((60, 60, 161)))
    assert link.transmit(a, 0.0) and a.arrival_s == pytest.approx((100 + 38) * 8 / 8000 + 0.01)
    assert link.transmit(b, 0.0) and b.arrival_s == pytest.approx(2 * (100 + 38) * 8 / 8000 + 0.01)
    assert not link.transmit(big, 0.0) and big.dropped and not big.lost  # 201 bytes > 200
    assert link.carried_bytes == 200  # the IP bytes carried; the refused one never was


def test_a_scenarios_mtu_and_overhead():
    base = {"seed": 1, "duration_s": 10, "network": {"forward": {"bandwidth_bps": 8000}}}
    plain = simlab.run(base)
    eth = simlab.run({**base, "network": {"forward": {"bandwidth_bps": 8000, "link_overhead_bytes": 38}}})
    media = plain.packets[plain.packets["kind"] == "media"]
    t_plain = (media["arrival_s"].astype(float) - media["send_s"].astype(float)).mean()
    m2 = eth.packets[eth.packets["kind"] == "media"]
    t_eth = (m2["arrival_s"].astype(float) - m2["send_s"].astype(float)).mean()
    assert t_eth - t_plain == pytest.approx(38 * 8 / 8000, rel=0.01)  # no queue at this load
    mtu = {**base, "network": {"forward": {"mtu_bytes": 100}}}
    assert simlab.run(mtu).summary["packets_dropped"] == 0  # 64-byte packets
    big = simlab.run({**mtu, "packetization": {"frames_per_packet": 8}})  # 40 + 8 x 12 bytes
    m = big.packets[big.packets["kind"] == "media"]
    size = m["header_bytes"].astype(int) + m["payload_bytes"].astype(int)
    assert (m["dropped"].astype(int) == (size > 100)).all() and (size > 100).sum() == 15  # the last is shorter


def test_defaults_keep_resolved_keys_and_run_keys():
    sc = load_scenario({"seed": 1})
    fwd = sc.resolved()["network"]["forward"]
    assert fwd["link_overhead_bytes"] == 0 and fwd["mtu_bytes"] is None
    without = sc.resolved()
    for way in ("forward", "reverse"):
        del without["network"][way]["link_overhead_bytes"], without["network"][way]["mtu_bytes"]
    assert run_key(sc.resolved()) == run_key(without)
    assert run_key(load_scenario({"seed": 1, "network": {"forward": {"mtu_bytes": 1500}}}).resolved()) != \
        run_key(sc.resolved())


def test_traces_prefix_names_the_shared_traces():
    sc = load_scenario({"seed": 1})
    assert sc.path("traces:Verizon-LTE-short.up") == TRACES / "Verizon-LTE-short.up"
