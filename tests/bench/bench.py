#!/usr/bin/env python3
"""Side-by-side benchmark of dubbo-health and the stock health services.

Runs `dh-loadgen` against each server in turn -- the server pinned to core 0, the client to
core 1, the same names registered, the same settings -- repeats every run, takes medians, and
writes a Markdown table (docs/bench.md), a plot (docs/bench.png) and the raw results (JSON).

    bench.py --loadgen target/release/dh-loadgen \
        --server 'dubbo-health=target/release/dubbo-health serve --addr 127.0.0.1:0 --control-stdin' \
        --server 'tonic-health=target/release/tonic-health-anchor --addr 127.0.0.1:0' ...

Every server command gets `--set NAME=SERVING` for each benchmark name appended, and must
print `listening ADDR` on stderr and take `set NAME STATUS` lines on stdin.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHECKED = "org.apache.dubbogo.samples.api.Greeter"
NAMES = [CHECKED] + [f"org.apache.dubbo.bench.Service{i}" for i in range(9)]
OURS = "dubbo-health"
# dubbo-health's tonic service mounted in a tonic host (the tonic-health anchor's runtime and
# server builder, `--mount dubbo-health`): measured only in the "mounted" runs, beside the
# stock tonic-health mounted the same way.
MOUNTED = "dubbo-health mounted"
SERVER_CORE = "0"
CLIENT_CORE = "1"


def raise_autogroup_priority(niceness: int) -> str | None:
    """With autogroup scheduling each session shares the CPU equally with every other session,
    whatever its processes' niceness; raise this session's group. Returns the old setting."""
    path = Path("/proc/self/autogroup")
    try:
        old = path.read_text().split("nice")[-1].strip()
        path.write_text(str(niceness))
        return old
    except (OSError, IndexError):
        return None


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def plan(quick: bool) -> list[dict]:
    """The runs, each a dict of loadgen arguments plus a key naming the scenario."""
    if quick:
        w_sizes = [2_000, 10_000]
        unary = {"warmup": 0.5, "duration": 2.0}
        rounds = 2
        churn = 2_000
        mounted = 2_000
    else:
        w_sizes = [10_000, 50_000]
        unary = {"warmup": 1.0, "duration": 5.0}
        rounds = 3
        churn = 10_000
        mounted = 10_000
    runs = [
        dict(key="check 1x1", mode="check", connections=1, in_flight=1, **unary),
        dict(key="check 4x64", mode="check", connections=4, in_flight=64, **unary),
    ]
    if not quick:
        runs.append(
            {
                "key": "check 4x64 h2load",
                "mode": "h2load",
                "connections": 4,
                "in_flight": 64,
                "warmup": 0,
                "duration": 5.0,
            }
        )
        runs.append(
            {
                "key": "list 4x64",
                "mode": "list",
                "connections": 4,
                "in_flight": 64,
                "warmup": 0.5,
                "duration": 3.0,
            }
        )
    for w in w_sizes:
        runs.append(
            {
                "key": f"watch {w}",
                "mode": "watch-fanout",
                "watchers": w,
                "connections": max(1, w // 100),
                "rounds": rounds,
            }
        )
    if not quick:
        for w in (100_000, 200_000):
            runs.append(
                {
                    "key": f"watch {w}",
                    "mode": "watch-fanout",
                    "watchers": w,
                    "connections": w // 100,
                    "rounds": rounds,
                    "only": OURS,
                }
            )
    # Probe churn, as a saturating run: a bare HTTP/2 prober on 16 lanes, so that the servers,
    # not the client, set the pace (with a tonic Channel per probe the client spends about
    # three times the server's CPU on its one core, and every server looks the same).
    runs.append(
        {
            "key": f"churn {churn}",
            "mode": "churn",
            "probes": churn,
            "lanes": 16,
            "client": "h2",
        }
    )
    # The same loop through a real client library, for reference: client-bound, no target.
    runs.append(
        {
            "key": f"churn {churn} tonic client",
            "mode": "churn",
            "probes": churn,
            "lanes": 4,
            "client": "tonic",
        }
    )
    runs.append(
        {
            "key": f"mounted watch {mounted}",
            "mode": "watch-fanout",
            "watchers": mounted,
            "connections": max(1, mounted // 100),
            "rounds": rounds,
            "servers": [MOUNTED, "tonic-health"],
            "ours": MOUNTED,
        }
    )
    return runs


def measured(run: dict, server: str) -> bool:
    """Whether `server` takes part in `run`."""
    if "servers" in run:
        return server in run["servers"]
    if run.get("only"):
        return server == run["only"]
    return server != MOUNTED


def grpc_check_body(path: Path) -> Path:
    """A length-prefixed gRPC HealthCheckRequest{service: CHECKED}, for h2load's -d."""
    msg = bytes([0x0A, len(CHECKED)]) + CHECKED.encode()
    path.write_bytes(b"\x00" + len(msg).to_bytes(4, "big") + msg)
    return path


def loadgen_cmd(
    loadgen: str,
    run: dict,
    server_cmd: list[str],
    label: str,
    body: Path | None = None,
    niceness: int = 0,
) -> list[str]:
    mode = "external" if run["mode"] == "h2load" else run["mode"]
    # The server started by the load generator inherits its niceness.
    cmd = ["nice", "-n", str(niceness)] if niceness else []
    cmd += ["taskset", "-c", CLIENT_CORE, loadgen, mode, "--label", label]
    if run["mode"] == "h2load":
        cmd += [
            "--cmd",
            (
                f"h2load -t 1 -c {run['connections']} -m {run['in_flight']} -D {run['duration']:g} "
                f"-d {body} -H content-type:application/grpc -H te:trailers "
                "http://{addr}/grpc.health.v1.Health/Check"
            ),
        ]
    elif run["mode"] in ("check", "list"):
        cmd += [
            "-c",
            str(run["connections"]),
            "-n",
            str(run["in_flight"]),
            "--warmup",
            str(run["warmup"]),
            "--duration",
            str(run["duration"]),
        ]
        if run["mode"] == "check":
            cmd += ["--service", CHECKED]
    elif run["mode"] == "churn":
        cmd += [
            "-n",
            str(run["probes"]),
            "-c",
            str(run["lanes"]),
            "--client",
            run["client"],
        ]
        cmd += ["--service", CHECKED]
    else:
        cmd += [
            "-w",
            str(run["watchers"]),
            "-c",
            str(run["connections"]),
            "--rounds",
            str(run["rounds"]),
            "--service",
            CHECKED,
        ]
    cmd += ["--", "taskset", "-c", SERVER_CORE, *server_cmd]
    for name in NAMES:
        cmd += ["--set", f"{name}=SERVING"]
    return cmd


def run_once(cmd: list[str], env: dict, timeout: float) -> dict:
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return {"failed": True, "error": tail or f"exit {proc.returncode}"}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    if res.get("mode") == "external":
        res = parse_h2load(res)
    return res


def parse_h2load(res: dict) -> dict:
    """Throughput, latency and server CPU per request out of h2load's report."""
    out = res.get("stdout", "")
    if res.get("exit_code") != 0:
        return {
            "failed": True,
            "error": f"h2load exit {res.get('exit_code')}: {res.get('stderr', '')[-200:]}",
        }
    done = ok = 0
    secs = None
    for line in out.splitlines():
        words = line.replace(",", " ").split()
        if line.startswith("finished in"):
            secs = float(words[2].rstrip("s"))
        elif line.startswith("requests:"):
            done = int(words[words.index("done") - 1])
        elif line.startswith("status codes:"):
            ok = int(words[2])
        elif line.startswith("time for request:"):
            # min max mean sd — h2load prints no percentiles; keep the mean.
            val = words[5]
            res["mean_us"] = (
                float(val[:-2]) * 1000
                if val.endswith("ms")
                else float(val[:-2])
                if val.endswith("us")
                else None
            )
    if not done or not secs:
        return {"failed": True, "error": "cannot read h2load's report"}
    res["ok"] = ok
    res["errors"] = done - ok
    res["throughput"] = ok / secs
    cpu = res.get("server_cpu_s")
    res["server_cpu_per_op_us"] = cpu * 1e6 / ok if cpu is not None and ok else None
    res["server_cpu_util"] = cpu / res["wall_s"] if cpu is not None else None
    res.pop("stdout", None)
    return res


METRICS = {
    # name: (json key, better, unit, format)
    "throughput": ("throughput", "high", "req/s", "{:,.0f}"),
    "mean": ("mean_us", "low", "µs", "{:,.0f}"),
    "p50": ("p50_us", "low", "µs", "{:,.0f}"),
    "p99": ("p99_us", "low", "µs", "{:,.0f}"),
    "p99.9": ("p999_us", "low", "µs", "{:,.0f}"),
    "CPU/op": ("server_cpu_per_op_us", "low", "µs", "{:.2f}"),
    "server CPU": ("server_cpu_util", "low", "cores", "{:.2f}"),
    "delivery (last)": ("delivery_last_ms", "low", "ms", "{:,.1f}"),
    "delivery (first)": ("delivery_first_ms", "low", "ms", "{:,.1f}"),
    "CPU/watcher/flip": ("server_cpu_per_watcher_us", "low", "µs", "{:.2f}"),
    "writes/flip": ("server_write_syscalls_per_flip", "low", "syscalls", "{:,.0f}"),
    "memory/watcher": ("mem_per_watcher_bytes", "low", "B", "{:,.0f}"),
    "open all": ("open_s", "low", "s", "{:.2f}"),
    "conns/s": ("conns_per_s", "high", "conn/s", "{:,.0f}"),
    "CPU/conn": ("server_cpu_per_conn_us", "low", "µs", "{:.1f}"),
    "RSS before": ("server_rss_before_kib", "low", "KiB", "{:,.0f}"),
    "RSS after": ("server_rss_after_kib", "low", "KiB", "{:,.0f}"),
}
CHURN_METRICS = ["conns/s", "CPU/conn", "RSS before", "RSS after"]
UNARY_METRICS = ["throughput", "p50", "p99", "p99.9", "CPU/op", "server CPU"]
H2LOAD_METRICS = ["throughput", "mean", "CPU/op", "server CPU"]
FANOUT_METRICS = [
    "delivery (last)",
    "delivery (first)",
    "CPU/watcher/flip",
    "memory/watcher",
    "writes/flip",
    "open all",
]


def med(results: list[dict], key: str):
    vals = [
        r[key]
        for r in results
        if not r.get("failed") and r.get(key) is not None and not r.get("errors")
    ]
    return statistics.median(vals) if vals else None


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass

    def ver(cmd: list[str]) -> str:
        try:
            return (
                subprocess.run(
                    cmd, capture_output=True, text=True, timeout=10, check=False
                )
                .stdout.strip()
                .splitlines()[0]
            )
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"

    return (
        f"{model}, {os.cpu_count()} cores (nproc {ver(['nproc'])}){mem}; Linux {platform.release()}; "
        f"{ver(['rustc', '--version'])}; {ver(['go', 'version'])}; grpc++ {ver(['pkg-config', '--modversion', 'grpc++'])}"
    )


def fmt(metric: str, v) -> str:
    if v is None:
        return "n/a"
    return METRICS[metric][3].format(v)


def ratio_cell(metric: str, ours, best) -> str:
    if ours is None or best is None or best == 0:
        return "n/a"
    return f"{ours / best:.2f}×"


TARGETS = [
    # (run key, metric, bound, meaning)
    ("watch 50000", "delivery (last)", 0.3, "≤"),
    ("watch 50000", "CPU/watcher/flip", 0.2, "≤"),
    ("watch 50000", "memory/watcher", 0.25, "≤"),
    ("check 4x64 h2load", "CPU/op", 0.5, "≤"),
    ("check 4x64 h2load", "throughput", 1.2, "≥"),
    ("check 4x64", "CPU/op", 0.8, "≤"),
    ("check 1x1", "throughput", 1.0, "≥"),
    ("check 1x1", "p99", 1.0, "≤"),
    ("churn 10000", "conns/s", 1.0, "≥"),
]
# Absolute targets of our server alone: (run key, metric, bound in the metric's unit).
ABSOLUTE = [("watch 50000", "delivery (first)", 20.0)]


def targets_section(runs: list[dict], table: dict, anchors: list[str]) -> list[str]:
    """The project's targets (ours ÷ best anchor), checked against this run."""
    keys = {r["key"] for r in runs}
    lines = [
        "\n## Targets (dubbo-health ÷ best anchor, this run)\n",
        "| run | measure | target | best anchor | dubbo-health | ratio | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, metric, bound, op in TARGETS:
        if key not in keys or (OURS, key) not in table:
            continue
        k, better = METRICS[metric][0], METRICS[metric][1]
        vals = [(med(table[(a, key)], k), a) for a in anchors if (a, key) in table]
        vals = [v for v in vals if v[0] is not None]
        ours = med(table[(OURS, key)], k)
        if not vals or ours is None:
            lines.append(
                f"| {key} | {metric} | {op} {bound}× | n/a | {fmt(metric, ours)} | n/a | n/a |"
            )
            continue
        best, who = max(vals) if better == "high" else min(vals)
        ratio = ours / best if best else float("nan")
        met = ratio <= bound if op == "≤" else ratio >= bound
        lines.append(
            f"| {key} | {metric} ({METRICS[metric][2]}) | {op} {bound}× | {fmt(metric, best)} ({who}) | "
            f"{fmt(metric, ours)} | {ratio:.2f}× | {'yes' if met else '**no**'} |"
        )
    for key, metric, bound in ABSOLUTE:
        if key not in keys or (OURS, key) not in table:
            continue
        ours = med(table[(OURS, key)], METRICS[metric][0])
        met = ours is not None and ours <= bound
        lines.append(
            f"| {key} | {metric} ({METRICS[metric][2]}) | ≤ {bound:g} {METRICS[metric][2]} | | "
            f"{fmt(metric, ours)} | | {'yes' if met else '**no**'} |"
        )
    for key in ("watch 100000", "watch 200000"):
        if key not in keys:
            continue
        res = table.get((OURS, key), [])
        ok = sum(1 for r in res if not r.get("failed"))
        lines.append(
            f"| {key} | every watcher gets every flip | works | | {ok}/{len(res)} runs | | "
            f"{'yes' if res and ok == len(res) else '**no**'} |"
        )
    for key in sorted(k for k in keys if k.startswith("churn ")):
        # Flat: no more than 10 % (and at least 1 MiB of slack) above the warmed-up baseline.
        for s in sorted({s for (s, k) in table if k == key}):
            before = med(table[(s, key)], "server_rss_before_kib")
            after = med(table[(s, key)], "server_rss_after_kib")
            if before is None or after is None:
                continue
            flat = after <= before * 1.1 + 1024
            lines.append(
                f"| {key} | server RSS flat ({s}) | ≤ +10 % | | {before:,.0f} → {after:,.0f} KiB | | "
                f"{'yes' if flat else '**no**'} |"
            )
    return lines + [""]


def made_by(args) -> str:
    """The command that made this page (Markdown): a make target, or bench.py with the flags
    that differ from it."""
    target = "`make bench-quick`" if args.quick else "`make bench`"
    extra = []
    if args.repeats != (1 if args.quick else 3):
        extra.append(f"--repeats {args.repeats}")
    if args.only:
        extra.append(f"--only {shlex.quote(args.only)}")
    if not extra:
        return target
    flags = " ".join((["--quick"] if args.quick else []) + extra)
    return f"`tests/bench/bench.py {flags}` with the servers of {target}"


def write_markdown(
    path: Path,
    runs: list[dict],
    table: dict,
    servers: list[str],
    args,
    started: str,
    elapsed: float,
) -> None:
    anchors = [s for s in servers if s != OURS]
    out = []
    out.append("# Benchmarks: dubbo-health against the stock health services\n")
    out.append(
        f"Generated by {made_by(args)} on {started} UTC "
        f"({elapsed / 60:.1f} min). Do not edit by hand.\n"
    )
    out.append(f"**Machine:** {machine()}.\n")
    if getattr(args, "loadavg", None):
        out.append(
            f"**Other load:** 1-minute load average {args.loadavg[0]} at the start, {args.loadavg[1]} at the end "
            "(2 would mean both cores busy with the benchmark alone). Throughput and latency suffer from any other "
            "work on the machine; server CPU per operation and memory per watcher are read per process and hold up.\n"
        )
    out.append(
        "**Method:** each server in turn is started by `dh-loadgen` (tests/loadgen) pinned to core 0 "
        "(`taskset -c 0`), the client pinned to core 1; every server registers the same "
        f"{len(NAMES)} names and flips the watched one on a `set NAME STATUS` line on stdin. "
        f"{args.repeats} repeat(s) of every run, medians shown"
        + (
            f"; client and server run at niceness {args.nice} (their session's scheduling autogroup too), ahead of other work on the machine. "
            if args.nice
            else ". "
        )
        + "Servers: our `dubbo-health serve` "
        "(the CLI's standalone server); stock `tonic-health` 0.14 on a one-worker tokio runtime; stock grpc-go "
        "`health.NewServer()` with GOMAXPROCS=1; grpc C++'s default health service "
        "(`EnableDefaultHealthCheckService`) beside one trivial service. Server CPU is read from "
        "`/proc/PID/task/*/schedstat`, memory from `VmRSS`. `check C×N` = C HTTP/2 connections × N calls in "
        "flight; `watch W` = W Watch streams on W/100 connections, *delivery* = from writing the `set` line "
        "to the last (or first) watcher having the new status, CPU per watcher = server CPU during the "
        "flip ÷ W, *writes/flip* = the server's write-type system calls during one flip (`syscw` in `/proc/PID/io`), memory per watcher = RSS growth from the connected-but-idle baseline to all W watching ÷ W. "
        "The client is one tonic thread: where the server's CPU is below one core during `check 4×64`, the "
        "client saturated first, and *CPU/op* is the figure to compare. `churn N` = N probes, each a new TCP "
        "connection, the HTTP/2 preface and SETTINGS, one Check read to its `grpc-status: 0`, and a close, by a "
        "bare `h2` prober on 16 lanes (the kernel's connect and close dominate both sides; a client library "
        "on top, as in the `tonic client` row, leaves the client's core the bottleneck for every server).\n"
    )
    out.append(
        "Ratios are dubbo-health ÷ the best anchor for that measure (lower is better, except "
        "throughput). Machines of this kind are noisy (±15 % run to run): compare within one run.\n"
    )

    for run in runs:
        key = run["key"]
        metrics = {
            "watch-fanout": FANOUT_METRICS,
            "h2load": H2LOAD_METRICS,
            "churn": CHURN_METRICS,
        }.get(run["mode"], UNARY_METRICS)
        ours = run.get("ours", OURS)
        run_anchors = [a for a in anchors if a != ours and a != MOUNTED]
        if run["mode"] == "h2load":
            params = (
                f"h2load, one thread, {run['connections']} conn × {run['in_flight']} in flight, "
                f"{run['duration']:.0f} s; drives the servers harder than the tonic client"
            )
        elif run["mode"] == "watch-fanout":
            params = f"{run['watchers']:,} watchers on {run['connections']:,} connections, {run['rounds']} flips"
            if run.get("servers"):
                params += "; both services mounted in the same tonic host, one-worker multi-thread runtime"
        elif run["mode"] == "churn":
            prober = {
                "h2": "a bare HTTP/2 prober (preface, SETTINGS, one Check, close)",
                "tonic": "a tonic Channel per probe: client-bound",
            }[run["client"]]
            params = (
                f"{run['probes']:,} × (connect, one Check, close) on {run['lanes']} lanes, {prober}, "
                "after 500 to warm up; RSS before and after"
            )
        else:
            params = f"{run['connections']} conn × {run['in_flight']} in flight, {run['duration']:.0f} s after {run['warmup']} s warm-up"
        out.append(f"\n## {key} ({params})\n")
        header = ["server"] + [f"{m} ({METRICS[m][2]})" for m in metrics] + ["runs ok"]
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "---|" * len(header))
        row_servers = [s for s in servers if table.get((s, key)) is not None]
        for s in row_servers:
            res = table[(s, key)]
            ok = sum(1 for r in res if not r.get("failed") and not r.get("errors"))
            cells = (
                [f"**{s}**" if s == OURS else s]
                + [fmt(m, med(res, METRICS[m][0])) for m in metrics]
                + [f"{ok}/{len(res)}"]
            )
            out.append("| " + " | ".join(cells) + " |")
        if ours in row_servers and any(a in row_servers for a in run_anchors):
            cells = ["ours ÷ best anchor"]
            for m in metrics:
                k, better = METRICS[m][0], METRICS[m][1]
                if m == "server CPU":
                    cells.append("")
                    continue
                vals = [
                    med(table[(a, key)], k) for a in run_anchors if (a, key) in table
                ]
                vals = [v for v in vals if v is not None]
                best = (max(vals) if better == "high" else min(vals)) if vals else None
                cells.append(ratio_cell(m, med(table[(ours, key)], k), best))
            cells.append("")
            out.append("| " + " | ".join(cells) + " |")
        notes: dict[str, list[str]] = {}
        for s in row_servers:
            for r in table[(s, key)]:
                if r.get("failed"):
                    note = (r.get("error") or "failed").splitlines()[-1][:160]
                elif r.get("errors"):
                    m = re.search(r"code: (\w+)", r.get("first_error") or "")
                    note = f"calls failed with {m.group(1) if m else (r.get('first_error') or '')[:120]}"
                else:
                    continue
                notes.setdefault(s, []).append(note)
        if notes:
            out.append("")
        for s, ns in notes.items():
            for note in sorted(set(ns)):
                out.append(
                    f"- {s}: {note} ({ns.count(note)} of {len(table[(s, key)])} runs)"
                )
        out.append("")

    out += targets_section(runs, table, anchors)
    out.append(
        "\n![fan-out delivery time, memory per watcher and Check throughput](bench.png)\n"
    )
    out.append(
        "Core micro-benchmarks (criterion, `make bench-core`): Check cost against the number of "
        "registered names and `set` cost against the watchers of one name: medians in "
        "[core.md](core.md#micro-benchmarks), the full report in "
        "`target/criterion/report/index.html` after a run.\n"
    )
    path.write_text("\n".join(out))


def write_plot(path: Path, runs: list[dict], table: dict, servers: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(17, 9))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fan = [r for r in runs if r["mode"] == "watch-fanout" and "servers" not in r]
    lines = [
        (axes[0][0], "delivery_last_ms", 1, "Watch fan-out: flip → last watcher", "ms"),
        (
            axes[0][1],
            "mem_per_watcher_bytes",
            1024,
            "Server memory per open Watch",
            "KiB",
        ),
        (
            axes[0][2],
            "server_cpu_per_watcher_us",
            1,
            "Server CPU per watcher per flip",
            "µs",
        ),
    ]
    for ax, key, scale, title, unit in lines:
        for i, s in enumerate(servers):
            pts = [(r["watchers"], med(table.get((s, r["key"]), []), key)) for r in fan]
            pts = [(x, y / scale) for x, y in pts if y is not None]
            if pts:
                ax.plot(
                    [p[0] for p in pts],
                    [p[1] for p in pts],
                    marker="o",
                    label=s,
                    color=colors[i % len(colors)],
                    linewidth=2.5 if s == OURS else 1.5,
                )
        ax.set_title(title)
        ax.set_xlabel("watchers (on watchers/100 connections)")
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)

    unary = [r["key"] for r in runs if r["mode"] in ("check", "h2load")]
    bars = [
        (
            axes[1][0],
            [k for k in unary if k == "check 1x1"],
            "throughput",
            1,
            "Check throughput, 1 call in flight",
            "requests/s",
        ),
        (
            axes[1][1],
            [k for k in unary if k != "check 1x1"],
            "throughput",
            1,
            "Check throughput, 4 × 64 in flight",
            "requests/s",
        ),
        (
            axes[1][2],
            [k for k in unary if k != "check 1x1"],
            "server_cpu_per_op_us",
            1,
            "Server CPU per Check",
            "µs",
        ),
    ]
    for ax, keys, key, scale, title, unit in bars:
        keys = [k for k in keys if any((s, k) in table for s in servers)]
        # Only the servers these runs measured (not the mounted one), in their line colours.
        present = [s for s in servers if any((s, k) in table for k in keys)]
        width = 0.8 / max(1, len(present))
        for i, s in enumerate(present):
            vals = [med(table.get((s, k), []), key) or 0 for k in keys]
            pos = [j + (i - (len(present) - 1) / 2) * width for j in range(len(keys))]
            color = colors[servers.index(s) % len(colors)]
            b = ax.bar(pos, vals, width, label=s, color=color)
            labels = [
                f"{v / 1000:.1f}k" if key == "throughput" else f"{v:.1f}" for v in vals
            ]
            ax.bar_label(b, labels=labels, fontsize=7)
        ax.set_xticks(range(len(keys)), [k.replace("check ", "") for k in keys])
        ax.set_title(title)
        ax.set_ylabel(unit)
        ax.grid(axis="y", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--loadgen", required=True)
    p.add_argument(
        "--server",
        action="append",
        required=True,
        metavar="NAME=COMMAND",
        help="a server to measure: its name, '=', its command line (shell words)",
    )
    p.add_argument(
        "--quick", action="store_true", help="reduced sizes and durations, one repeat"
    )
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument(
        "--only", default=None, help="comma-separated run keys to do (default: all)"
    )
    p.add_argument(
        "--nice",
        type=int,
        default=-15 if os.geteuid() == 0 else 0,
        help="niceness of client and server (default -15 as root: other work on the machine "
        "then gets little of the two cores while a run lasts; 0 to leave it)",
    )
    p.add_argument("--md", default="docs/bench.md")
    p.add_argument("--png", default="docs/bench.png")
    p.add_argument("--json", default=None, help="where to write every raw result")
    p.add_argument(
        "--from-json",
        default=None,
        help="only re-render the page and plot from a --json file",
    )
    args = p.parse_args()
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    raise_nofile()
    old_group_nice = (
        raise_autogroup_priority(args.nice)
        if args.nice and not args.from_json
        else None
    )
    try:
        return run_all(args)
    finally:
        if old_group_nice is not None:
            Path("/proc/self/autogroup").write_text(old_group_nice)


def run_all(args) -> int:

    servers: list[str] = []
    cmds: dict[str, list[str]] = {}
    for spec in args.server:
        name, _, cmd = spec.partition("=")
        servers.append(name)
        cmds[name] = shlex.split(cmd)
    env = dict(os.environ, GOMAXPROCS="1")

    Path(args.md).parent.mkdir(parents=True, exist_ok=True)
    body = grpc_check_body(Path(tempfile.gettempdir()) / "dh-bench-check-request.bin")
    runs = plan(args.quick)
    if args.only:
        keys = set(args.only.split(","))
        runs = [r for r in runs if r["key"] in keys]
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    t_start = time.monotonic()
    load_start = Path("/proc/loadavg").read_text().split()[0]
    table: dict[tuple[str, str], list[dict]] = {}
    raw = []
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        for item in saved["results"]:
            table.setdefault((item["server"], item["run"]), []).append(item["result"])
        runs = [r for r in runs if any(k[1] == r["key"] for k in table)]
        args.repeats = max(item["repeat"] for item in saved["results"]) + 1
        started, elapsed = saved["started"], saved["elapsed_s"]
        args.loadavg = saved.get("loadavg")
        write_markdown(Path(args.md), runs, table, servers, args, started, elapsed)
        write_plot(Path(args.png), runs, table, servers)
        print(f"wrote {args.md} and {args.png} from {args.from_json}")
        return 0
    # Repeats are interleaved (all servers, then all servers again) so drift hits everyone alike.
    for rep in range(args.repeats):
        for run in runs:
            for s in servers:
                if not measured(run, s):
                    continue
                cmd = loadgen_cmd(args.loadgen, run, cmds[s], s, body, args.nice)
                timeout = 600 if run["mode"] == "watch-fanout" else 120
                t0 = time.monotonic()
                try:
                    res = run_once(cmd, env, timeout)
                except subprocess.TimeoutExpired:
                    res = {"failed": True, "error": f"timed out after {timeout} s"}
                except json.JSONDecodeError as e:
                    res = {"failed": True, "error": f"bad loadgen output: {e}"}
                table.setdefault((s, run["key"]), []).append(res)
                raw.append(
                    {
                        "server": s,
                        "run": run["key"],
                        "repeat": rep,
                        "cmd": cmd,
                        "result": res,
                    }
                )
                shown = {
                    "watch-fanout": FANOUT_METRICS[:4],
                    "h2load": H2LOAD_METRICS,
                    "churn": CHURN_METRICS,
                }.get(run["mode"], UNARY_METRICS[:5])
                brief = (
                    ("FAILED " + (res["error"].splitlines() or ["?"])[-1])
                    if res.get("failed")
                    else ", ".join(
                        f"{m}={fmt(m, res.get(METRICS[m][0]))}" for m in shown
                    )
                )
                print(
                    f"[{rep + 1}/{args.repeats}] {run['key']:<20} {s:<20} {time.monotonic() - t0:5.1f}s  {brief}",
                    flush=True,
                )
    elapsed = time.monotonic() - t_start
    args.loadavg = [load_start, Path("/proc/loadavg").read_text().split()[0]]
    for path in (args.md, args.png):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_markdown(Path(args.md), runs, table, servers, args, started, elapsed)
    write_plot(Path(args.png), runs, table, servers)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "started": started,
                    "elapsed_s": elapsed,
                    "loadavg": args.loadavg,
                    "results": raw,
                },
                indent=1,
            )
        )
    print(f"wrote {args.md} and {args.png} in {elapsed:.0f} s")
    failed = [k for k, v in table.items() if all(r.get("failed") for r in v)]
    if failed:
        print(f"every repeat failed for: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
