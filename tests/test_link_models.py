"""Every link model of real networks (mahimahi, netem, fate_trace) in a run: the same seed gives
the same bytes, another seed other draws."""
import numpy as np
import pytest

import simlab


def _models(tmp_path):
    fates = tmp_path / "fates.csv"
    rng = np.random.default_rng(0)
    fates.write_text("seq,delay_s\n" + "".join(f"{i},{'lost' if rng.random() < 0.1 else round(rng.random() / 10, 6)}\n"
                                               for i in range(50)))
    trace = tmp_path / "t.up"
    trace.write_text("".join(f"{t}\n" for t in sorted(rng.integers(0, 2000, 300))) + "2000\n")
    return {"mahimahi": {"model": "mahimahi", "trace": str(trace), "queue_packets": 3},
            "netem": {"model": "netem", "distribution": "paretonormal", "correlation": 0.3, "reorder": 0.1},
            "fate_trace": {"model": "fate_trace", "file": str(fates)}}


@pytest.mark.parametrize("model", ["mahimahi", "netem", "fate_trace"])
def test_same_seed_same_bytes(tmp_path, model):
    link = _models(tmp_path)[model]
    sc = {"seed": 11, "duration_s": 20, "network": {
        "forward": {"bandwidth_bps": 20000, "delay_s": 0.03, "jitter_s": 0.01, "link": link,
                    "loss": {"model": "gilbert_elliott", "loss": 0.05, "burst": 2}},
        "reverse": {"delay_s": 0.03, "jitter_s": 0.01, "link": link}}}
    simlab.run(sc, out=tmp_path / "a")
    simlab.run(sc, out=tmp_path / "b")
    for name in ("packets.csv", "frames.csv", "summary.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    other = simlab.run({**sc, "seed": 12})
    first = simlab.run(sc)
    if model != "fate_trace":  # a record has no randomness of its own but the channel's
        assert not other.packets.equals(first.packets)
