"""``simlab trace from-pcap SENDER.pcap RECEIVER.pcap --out fates.csv``: a fate trace (the
``fate_trace`` link model's file) from a sender-side and a receiver-side capture of one RTP
stream, so a capture from a real network replays in simlab."""
from __future__ import annotations

from simlab.registry import CommandEntry


def _from_pcap(args) -> int:
    from simlab.pcap_fates import fates_from_pcaps, write_fates

    fates = fates_from_pcaps(args.sender, args.receiver, args.ssrc, args.port, args.clock_offset_s)
    n = len(fates.seqs)
    note = (f"simlab trace from-pcap {args.sender} {args.receiver}: SSRC {fates.ssrc:#010x}, {n} packets sent, "
            f"{fates.lost} lost, clock offset {args.clock_offset_s:g} s")
    write_fates(fates, args.out, note)
    got = [d for d in fates.delays if d is not None]
    print(f"{args.out}: {n} packets, {fates.lost} lost ({fates.lost / n:.1%})"
          + (f", delay {min(got):.6f}-{max(got):.6f} s" if got else ""))
    if fates.duplicates or fates.unmatched:
        print(f"simlab: note: the receiver's capture has {fates.duplicates} duplicate and {fates.unmatched} "
              "unknown packets of the stream (ignored)")
    return 0


def _ssrc(text: str) -> int:
    import argparse

    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (e.g. 0x51a0 or 20896)") from None
    if not 0 <= value < 1 << 32:
        raise argparse.ArgumentTypeError(f"{text} is not a 32-bit SSRC")
    return value


def _add(sub) -> None:
    t = sub.add_parser("trace", help="link traces: build a fate trace from captures")
    tsub = t.add_subparsers(dest="trace_command", required=True)
    f = tsub.add_parser("from-pcap", help="a fate trace (seq,delay_s per packet) from a sender-side and a "
                                          "receiver-side capture of one RTP stream")
    f.add_argument("sender", help="the sender-side capture (pcap or pcapng)")
    f.add_argument("receiver", help="the receiver-side capture")
    f.add_argument("--out", required=True, help="the fate trace to write (CSV)")
    f.add_argument("--ssrc", type=_ssrc, help="the RTP stream's SSRC (e.g. 0x51a0), when the capture holds several")
    f.add_argument("--port", type=int, help="only RTP to this UDP destination port")
    f.add_argument("--clock-offset-s", type=float, default=0.0,
                   help="the receiver's clock minus the sender's, subtracted from every delay (default 0)")
    f.set_defaults(fn=_from_pcap)


TRACE = CommandEntry("trace", _add)
