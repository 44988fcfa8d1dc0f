#!/usr/bin/env python3
"""Is the page's start-up bound by the machine's CPU? (Not a test; Linux only: reads /proc.)

For each cold load (fresh Chromium profile, fake camera fed by the astronaut, all stages on wasm, the
loads of ``bench/startup_bench.py``) it samples the whole machine's CPU every 100 ms from navigation to
the first landmarks and prints how busy all cores were, then the CPU time each kind of process spent
in that window (Chromium's renderer, browser, GPU and utility processes; this script with its site
server; anything else), and the renderer's split by thread (its main thread, workers, the thread
pool), medians over the loads.

    python -m bench.startup_cpu --runs 3 --chromium-arg=--disable-gpu-compositing

Busy near 100 % means the start-up waits for CPU, not for the network or for idle gaps: it gets
sooner only with less work (or work moved off the cores the others need), not by reordering it.
"""
from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import browser as helpers
from bench.startup_bench import QUERY, wait_first_landmarks

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 10.0


def machine_ticks() -> tuple[int, int]:
    """(all, idle) jiffies of every core since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]          # idle + iowait


def process_kind(cmdline: str) -> str:
    if "--type=renderer" in cmdline:
        return "renderer"
    if "--type=gpu-process" in cmdline:
        return "gpu"
    if "--utility-sub-type=" in cmdline:
        return "utility: " + cmdline.split("--utility-sub-type=")[1].split()[0].split(".")[0]
    if "chrom" in cmdline.split(" ", 1)[0]:
        return "browser"
    return "other (this script, its server, playwright...)"


def thread_kind(pid: int, tid: int, comm: str) -> str:
    if tid == pid:
        return "renderer: its main thread (the page's JS, Pyodide, Python)"
    if comm.startswith("DedicatedWorker"):
        return "renderer: workers (ONNX Runtime's)"
    if comm.startswith("ThreadPool"):
        return "renderer: thread pool (V8's wasm compiles and tier-up, JS parsing, GC)"
    return "renderer: other threads"


def stat_ticks(stat_file: str) -> tuple[str, int]:
    """(name, user + system jiffies) of a process or thread, from its /proc stat file."""
    stat = Path(stat_file).read_text()
    fields = stat[stat.rfind(")") + 2:].split()
    return stat[stat.find("(") + 1:stat.rfind(")")], int(fields[11]) + int(fields[12])


def cpu_ticks() -> dict[tuple[int, ...], tuple[int, str]]:
    """(pid,) → (jiffies, kind) for every process we may read, and (pid, tid) → (jiffies, kind) for
    every thread of the renderer processes (their split: main thread, workers, thread pool)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            _, ticks = stat_ticks(f"/proc/{pid}/stat")
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out[(pid,)] = (ticks, process_kind(cmd))
        if out[(pid,)][1] != "renderer":
            continue
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:                                   # it has just ended
            continue
        for tid in tids:
            try:
                comm, ticks = stat_ticks(f"/proc/{pid}/task/{tid}/stat")
            except OSError:
                continue
            out[(pid, tid)] = (ticks, thread_kind(pid, tid, comm))
    return out


class BusySampler:
    """The machine's busy fraction per 100 ms, sampled in a thread while a load runs."""

    def __init__(self):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        last = machine_ticks()
        while not self._stop.wait(0.1):
            now = machine_ticks()
            total, idle = now[0] - last[0], now[1] - last[1]
            if total:
                self.samples.append(1 - idle / total)
            last = now

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def one_load(pw, url: str, video: Path, chromium_args: list[str]) -> dict:
    with helpers.launch(pw, helpers.browser_args(video) + chromium_args) as ctx:
        page = ctx.new_page()
        time.sleep(1.0)                                   # let Chromium's own start settle
        before = cpu_ticks()
        with BusySampler() as busy:
            page.goto(url + QUERY)
            first = wait_first_landmarks(page)
        after = cpu_ticks()
    cpu = collections.Counter()
    for key, (ticks, kind) in after.items():
        cpu[kind] += (ticks - before.get(key, (0,))[0]) * TICK_MS
    return {"first": float(first), "busy": busy.samples, "cpu": cpu}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--chromium-arg", action="append", default=[], help="extra Chromium switch")
    args = ap.parse_args(argv)
    if not Path("/proc/stat").exists():
        print("startup_cpu reads /proc: Linux only", file=sys.stderr)
        return 2
    if helpers.cannot_run():
        return 2
    from playwright.sync_api import sync_playwright
    cores = os.cpu_count() or 1
    loads = []
    with tempfile.TemporaryDirectory() as tmp, helpers.serve() as url, sync_playwright() as pw:
        video = helpers.write_y4m(Path(tmp) / "astronaut.y4m", helpers.astronaut_frame())
        for i in range(args.runs):
            load = one_load(pw, url, video, args.chromium_arg)
            loads.append(load)
            mean_busy = statistics.fmean(load["busy"]) if load["busy"] else float("nan")
            print(f"load {i + 1}: first landmarks {load['first']:.0f} ms; all {cores} cores busy "
                  f"{100 * mean_busy:.0f} % on average; per 100 ms: "
                  + " ".join(f"{100 * b:.0f}" for b in load["busy"]), flush=True)
    first = statistics.median(l["first"] for l in loads)
    print(f"median first landmarks {first:.0f} ms; CPU time from navigation to first landmarks "
          f"(median ms; {cores} cores × {first:.0f} ms = {cores * first:.0f} ms available):")
    kinds = sorted({k for l in loads for k in l["cpu"]}, key=lambda k: -statistics.median(l["cpu"][k] for l in loads))
    for kind in kinds:
        print(f"  {statistics.median(l['cpu'][kind] for l in loads):7.0f}  {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
