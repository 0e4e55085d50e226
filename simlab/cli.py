"""The `simlab` command: thin; each subcommand calls into the package."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from simlab.cli_run import run_command
from simlab.errors import UserError


def _run(args) -> int:
    from simlab.api import run
    from simlab.scenario import load_scenario

    sc = load_scenario(args.scenario, args.set)
    out = Path(args.out) if args.out else Path("results") / sc.name
    result = run(sc, out, force=args.force, engine=args.engine)
    summary = result.summary
    for warning in result.warnings:
        print(f"simlab: warning: {warning}", file=sys.stderr)
    from simlab.clean import stale_note

    note = stale_note(out)  # other runs' partial folders, left by runs killed with SIGKILL
    if note:
        print(f"simlab: note: {note}", file=sys.stderr)
    keys = ["packets_sent", "loss_rate", "payload_bps", "header_bps", "ctrl_bps", "total_bps", "eq24_total_bps",
            "latency_mean_s", "latency_p95_s"]
    extra = [k for k in summary if k not in keys and k.split("_")[0] in ("visqol", "plcmos", "dnsmos", "wer")]
    print(f"{sc.name}: wrote {out}/")
    for k in keys + extra:
        v = summary.get(k)
        print(f"  {k:>16} {v:.6g}" if isinstance(v, float) else f"  {k:>16} {v}")
    return 0


def _schema(args) -> int:
    from simlab.scenario import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def _check(args) -> int:
    from simlab.scenario import load_scenario
    from simlab.scenario_inputs import check_inputs

    sc = load_scenario(args.scenario, args.set)
    check_inputs(sc)  # what `simlab run` checks before it simulates: check passes what run accepts
    print(json.dumps(sc.resolved(), indent=2))
    return 0


def _bench(args) -> int:
    from simlab.bench import run_bench

    net = {"against": args.against, "fmt": args.format, "memory": args.memory, "engine": args.engine,
           "repeat": args.repeat}
    if args.what not in ("network", "all") and (args.against or args.format != "csv" or args.memory
                                                 or args.engine != "auto" or args.repeat != 1):
        raise UserError("--against, --format, --memory, --engine and --repeat apply to `simlab bench network` only")
    if args.repeat != 1 and not args.against:
        raise UserError("--repeat: repeats the cases of --against nspy; give --against nspy too")
    _in_range("--repeat", args.repeat, 1, 50)
    return run_bench(args.what, quick=args.quick, network=net)


def _in_range(flag: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise UserError(f"{flag}: {value} is not in [{lo}, {hi}]")


def _calibrate(args) -> int:
    from simlab.calibrate import MAX_FRAMES, calibrate, check_device, check_profile_out
    from simlab.scenario import MAX_THREADS, load_scenario, parse_scenario

    # Arguments first: a bad one must not cost a model load and a measurement.
    _in_range("--frames", args.frames, 1, MAX_FRAMES)
    _in_range("--threads", args.threads, 1, MAX_THREADS)
    sizes = _batch_sizes(args.batch)
    check_device(args.device)
    check_profile_out(Path(args.out))
    src = Path(args.system)
    if src.suffix in (".yaml", ".yml") or src.is_file():
        spec = load_scenario(src).system
    else:
        from simlab.yaml_file import load_yaml

        try:
            spec = parse_scenario({"system": load_yaml(args.system, "--system")}, ".", "--system").system
        except Exception as exc:
            if isinstance(exc, UserError):
                raise
            raise UserError(f"--system: {args.system!r} is neither a scenario file nor a system mapping") from None
    data = calibrate(spec, args.device, Path(args.out), frames=args.frames, threads=args.threads, batch=sizes)
    from simlab.build import system_key

    print(f"wrote {args.out}: {system_key(spec)} on {args.device}")
    for stage, st in data["systems"][system_key(spec)].items():
        print(f"  {stage:>10}  median {st['median_s'] * 1e3:8.3f} ms  p95 {st['p95_s'] * 1e3:8.3f} ms  ({st['calls']} calls)")
        for size in sizes:
            b = st.get("batch", {}).get(size)
            if b:
                print(f"  {'batch ' + str(size):>10}  median {b['median_s'] * 1e3:8.3f} ms  p95 {b['p95_s'] * 1e3:8.3f} ms")
    return 0


def _batch_sizes(text: str | None) -> tuple[int, ...]:
    """``--batch 4,16`` -> (4, 16); each a whole number in [1, 1024]."""
    if not text:
        return ()
    try:
        sizes = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise UserError(f"--batch: {text!r} is not a comma-separated list of batch sizes (e.g. 4,16)") from None
    for size in sizes:
        _in_range("--batch", size, 1, 1024)
    return sizes


def _info(args) -> int:
    from simlab.simulation import git_commit, versions

    print(json.dumps({"versions": versions(), "git_commit": git_commit()}, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="simlab", description="Network simulation testbed for LargeSC.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run one scenario")
    r.add_argument("scenario")
    r.add_argument("--out", help="output folder (default results/<scenario name>)")
    r.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a scenario key")
    r.add_argument("--force", action="store_true", help="replace an existing output folder")
    r.add_argument("--engine", default="auto", choices=["auto", "event", "block"],
                   help="auto: the block engine where the scenario allows it (same outputs, faster), else events")
    r.set_defaults(fn=_run)

    c = sub.add_parser("check", help="validate a scenario and print it resolved, with defaults")
    c.add_argument("scenario")
    c.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE")
    c.set_defaults(fn=_check)

    s = sub.add_parser("schema", help="print the JSON Schema of the scenario format")
    s.set_defaults(fn=_schema)

    b = sub.add_parser("bench", help="benchmarks: print speed and memory numbers")
    b.add_argument("what", nargs="?", default="network", choices=["network", "writers", "actors", "batching", "codecs",
                                                                  "metrics", "batch", "startup", "all"])
    b.add_argument("--quick", action="store_true", help="shorter runs (a smoke test of the benchmark)")
    b.add_argument("--against", choices=["nspy"], help="network: run ns.py's reference topology too, print ratios")
    b.add_argument("--format", default="csv", choices=["csv", "parquet"], help="network: the record format")
    b.add_argument("--memory", action="store_true", help="network: peak memory vs duration and per idle flow")
    b.add_argument("--engine", default="auto", choices=["auto", "event", "block"],
                   help="network: the engine simlab's cases run on (auto: block, where they can)")
    b.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="network --against nspy: run each case N times (1-50), pair after pair; report medians")
    b.set_defaults(fn=_bench)

    k = sub.add_parser("calibrate", help="measure a system's stages on a device; write a latency profile")
    k.add_argument("--system", required=True, help="a scenario file, or a system mapping such as "
                                                   "'{kind: opus, bitrate_bps: 8000}'")
    k.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    k.add_argument("--out", required=True, help="profile file (YAML); an existing one gains this system")
    k.add_argument("--frames", type=int, default=100, help="frames to time (default 100)")
    k.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1, as runs use)")
    k.add_argument("--batch", help="batch sizes to time too, e.g. 4,16 (compute.batch runs read them)")
    k.set_defaults(fn=_calibrate)

    from simlab import registry
    from simlab.batch.cli import add_parser as add_batch
    from simlab.report.plot_cli import add_parser as add_plot

    add_batch(sub)
    from simlab.clean import add_parser as add_clean

    add_clean(sub)
    add_plot(sub)
    for name, command in registry.entries("commands").items():  # plugins' commands (LargeSC's train)
        try:
            command.add_parser(sub)
        except Exception as exc:  # a broken plugin command must not take the others down
            registry.report_problem(f"{registry.origin('commands', name)} failed to add its command: "
                                    f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")

    i = sub.add_parser("info", help="versions and git commit")
    i.set_defaults(fn=_info)
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("NO_TORCH_COMPILE", "1")  # moshi compiles for ~20 s otherwise
    args = build_parser().parse_args(argv)
    return run_command(lambda: args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
