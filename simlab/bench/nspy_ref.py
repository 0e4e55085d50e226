"""ns.py's side of the network benchmark, built from ns.py's own elements (PyPI ``ns.py``, import
name ``ns``): the reference topology, N independent flows of one `DistPacketGenerator` (a
``packet_bytes`` packet every ``interval_s``) into a `Wire` (``delay_s``, i.i.d. loss ``loss``)
into one `PacketSink` that keeps what ns.py's sink keeps by default (per flow: arrival times,
waits, sizes, creation and per-hop times); and the same with a TCP Reno bulk flow
(`TCPPacketGenerator` + `TCPSink`, acks back over a wire of their own) sharing a drop-tail `Port`
of ``rate_bps`` with the speech flows.

Nothing of simlab is imported here beyond this package (the benchmark runs it in a fresh process
and its peak memory should be ns.py's). ns.py's `Wire` draws losses from the ``random`` module, so
the module's generator is seeded from a `SeedSequence` of the bench's seed.
"""
from __future__ import annotations

import random
import resource
import time

import numpy as np

PACKET_BYTES = 60     # the reference topology: 60-byte packets every 160 ms, 20 ms, 10 % loss
INTERVAL_S = 0.16
DELAY_S = 0.02
LOSS = 0.1
TCP_MSS = 512         # ns.py's TCPPacketGenerator sends 512-byte segments (fixed in ns.py)


def available() -> str | None:
    """None when ns.py can be imported, else why not (one line)."""
    try:
        import ns.packet.dist_generator  # noqa: F401
    except ImportError as exc:
        return f"ns.py is not installed ({exc}); pip install 'ns.py>=0.4' or simlab's 'nspy' extra"
    return None


def _seed(seed: int) -> None:
    random.seed(int(np.random.SeedSequence(seed).generate_state(1)[0]))


def _const(v: float):
    return lambda *a, **k: v


def _generators(env, flows: int, duration_s: float, packet_bytes: int, interval_s: float):
    from ns.packet.dist_generator import DistPacketGenerator

    # A generator makes a packet while now < finish: half an interval before the end gives exactly
    # duration/interval packets per flow, whatever the float sum of the intervals.
    n = round(duration_s / interval_s)
    finish = (n - 0.5) * interval_s
    return [DistPacketGenerator(env, f"flow {k}", _const(interval_s), _const(packet_bytes),
                                finish=finish, flow_id=k) for k in range(flows)]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_reference(flows: int, duration_s: float, seed: int = 1, packet_bytes: int = PACKET_BYTES,
                  interval_s: float = INTERVAL_S, delay_s: float = DELAY_S, loss: float = LOSS) -> dict:
    """The reference topology, timed from building it to the end of the run. ``packets`` counts
    the packets the generators sent (the packets/s of the table)."""
    import simpy
    from ns.packet.sink import PacketSink
    from ns.port.wire import Wire

    _seed(seed)
    t0, c0 = time.perf_counter(), time.process_time()
    env = simpy.Environment()
    sink = PacketSink(env)
    gens = _generators(env, flows, duration_s, packet_bytes, interval_s)
    for g in gens:
        g.out = Wire(env, _const(delay_s), _const(loss))
        g.out.out = sink
    env.run(until=duration_s + 2 * delay_s + interval_s)  # the last packet leaves at duration_s
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    sent = sum(g.packets_sent for g in gens)
    return {"packets": sent, "received": sum(sink.packets_received.values()), "wall_s": wall, "cpu_s": cpu,
            "packets_per_s": sent / wall, "peak_rss_mb": _peak_mb()}


def run_tcp(flows: int, duration_s: float, seed: int = 1, rate_bps: float = 1e6, queue_packets: int = 50,
            packet_bytes: int = PACKET_BYTES, interval_s: float = INTERVAL_S, delay_s: float = DELAY_S) -> dict:
    """``flows`` speech flows and one TCP Reno flow (flow id ``flows``) into one drop-tail `Port`
    (``rate_bps``; ``queue_packets`` waiting besides the one in service), then a lossless wire of
    ``delay_s`` to a demux: speech to a `PacketSink`, segments to a `TCPSink` whose acks return over
    a wire of ``delay_s``. ``packets`` counts what entered the port (speech packets and TCP
    segments, retransmissions included; acks not, they do not cross it)."""
    import simpy
    from ns.demux.flow_demux import FlowDemux
    from ns.flow.cc import TCPReno
    from ns.flow.flow import Flow
    from ns.packet.sink import PacketSink
    from ns.packet.tcp_generator import TCPPacketGenerator
    from ns.packet.tcp_sink import TCPSink
    from ns.port.port import Port
    from ns.port.wire import Wire

    _seed(seed)
    t0, c0 = time.perf_counter(), time.process_time()
    env = simpy.Environment()
    port = Port(env, rate_bps, qlimit=queue_packets + 1)  # ns.py's qlimit counts the one in service
    sink, tcp_sink = PacketSink(env), TCPSink(env)
    gens = _generators(env, flows, duration_s, packet_bytes, interval_s)
    for g in gens:
        g.out = port
    flow = Flow(fid=flows, src="tcp", dst="tcp", finish_time=duration_s)
    tcp = TCPPacketGenerator(env, flow=flow, cc=TCPReno(mss=TCP_MSS), element_id="tcp")
    tcp.out = port
    port.out = Wire(env, _const(delay_s))
    port.out.out = FlowDemux([sink] * flows + [tcp_sink])
    tcp_sink.out = Wire(env, _const(delay_s))
    tcp_sink.out.out = tcp
    env.run(until=duration_s)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"packets": port.packets_received, "speech_packets": sum(g.packets_sent for g in gens),
            "tcp_packets": port.packets_received - sum(g.packets_sent for g in gens),
            "dropped": port.packets_dropped, "wall_s": wall, "cpu_s": cpu,
            "packets_per_s": port.packets_received / wall, "peak_rss_mb": _peak_mb()}
