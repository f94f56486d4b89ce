#!/usr/bin/env python3
"""The benchmark suite behind `make bench`. `bench/run.sh` builds the binaries, fetches the peers
and calls this script; see `bench/README.md` for the method.

Sections are registered in `SECTIONS` (name → function), each from its own module: `null_peer`
(start-up, plans, memory, apply latency against HashiCorp's `null` provider) and
`official_peer` (the `flux_bootstrap_git` scenario meant side by side with the official Go
provider). A section is `run(ctx) -> (rows, notes[, details])`: rows of the main table
(metric, ours, peer, ratio, target, met?), bullet notes, and optional Markdown shown under its
own heading. `--only`/`--skip` pick sections by name. A new section (e.g. a fleet section) is a
module with a `SECTIONS` list added to `MODULES` below.

Prints the Markdown report on stdout and writes it into `--out` between the markers.
"""

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fleet  # noqa: E402
import null_peer  # noqa: E402
import official_peer  # noqa: E402
from benchlib import (Sandbox, link_plugin, load_average, log, wrap_plugin,  # noqa: E402
                      write_cli_config)

MODULES = [null_peer, official_peer, fleet]
SECTIONS = [s for m in MODULES for s in m.SECTIONS]


class Context:
    """What sections share: options, binaries, the temporary root, the CLI configurations (plain
    and with the accounting wrapper) and a lazily started shared sandbox."""

    def __init__(self, args, root):
        self.args = args
        self.root = root
        self.sizes = [int(s) for s in args.sizes.split(",")]
        plain, wrapped = os.path.join(root, "plugins"), os.path.join(root, "plugins-rss")
        link_plugin(plain, "terraform-provider-flux", args.provider)
        link_plugin(plain, "terraform-provider-null", args.null)
        wrap_plugin(wrapped, "terraform-provider-flux", args.provider)
        wrap_plugin(wrapped, "terraform-provider-null", args.null)
        self.cli, self.cli_rss = os.path.join(root, "cli.tfrc"), os.path.join(root, "cli-rss.tfrc")
        sources = ("registry.terraform.io/fluxrs/flux", "registry.terraform.io/hashicorp/null")
        write_cli_config(self.cli, {s: plain for s in sources})
        write_cli_config(self.cli_rss, {s: wrapped for s in sources})
        self._sandbox = None

    def shared_sandbox(self):
        """One sandbox with the operator installed, shared by the plan and latency sections."""
        if self._sandbox is None:
            self._sandbox = Sandbox(self.args.sandbox, os.path.join(self.root, "sandbox"))
        return self._sandbox

    def close(self):
        if self._sandbox:
            self._sandbox.stop()
            self._sandbox = None


def machine():
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    osname = sh(". /etc/os-release && echo \"$PRETTY_NAME\"")
    tf = sh("terraform version | head -n1")
    return (f"{sh('nproc')} CPUs ({cpu}), {mem} RAM, {osname}, kernel {platform.release()}, "
            f"{tf}, {sh('git --version')}, {sh('rustc --version')}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--provider", required=True)
    p.add_argument("--sandbox", required=True)
    p.add_argument("--null", required=True)
    p.add_argument("--official-status", default="",
                   help="why the official Go provider is not measured (run.sh's probe)")
    p.add_argument("--out", required=True)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--bootstrap-runs", type=int, default=3)
    p.add_argument("--startup-runs", type=int, default=30)
    p.add_argument("--applies", type=int, default=20)
    p.add_argument("--sizes", default="10,100,500")
    p.add_argument("--fleet-sizes", default="10,20,40",
                   help="clusters per fleet in the fleet section")
    names = [name for name, _ in SECTIONS]
    p.add_argument("--skip", default="", help="comma-separated sections: " + ",".join(names))
    p.add_argument("--only", default="", help="comma-separated sections to run (default all)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    only = set(filter(None, args.only.split(",")))
    unknown = (skip | only) - set(names)
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}; known: {names}")
    started = time.time()
    loads = [load_average()]

    root = tempfile.mkdtemp(prefix="flux-bench-")
    ctx = Context(args, root)
    rows, notes, details = [], [], []
    try:
        for name, run in SECTIONS:
            if name in skip or (only and name not in only):
                continue
            log(f"section {name} (load average {load_average()})")
            out = run(ctx)
            rows += out[0]
            notes += out[1]
            if len(out) > 2 and out[2]:
                details.append((name, out[2]))
            loads.append(load_average())
    finally:
        ctx.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            log(f"kept {root}")

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    table = ["| metric | ours | peer | ratio | target | met? |",
             "|---|---|---|---|---|---|"]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    extra = []
    for name, text in details:
        extra += ["", f"Section `{name}`, per step (ours):", "", text]
    report = "\n".join([
        f"Run: {now}, {args.runs} measured runs after {args.warmup} warm-up "
        f"(start-up: {args.startup_runs} after 3; bootstrap: {args.bootstrap_runs}), "
        f"total {time.time() - started:.0f} s.",
        f"Machine: {machine()}.",
        f"Load average (1, 5, 15 min) at the start and after each section: "
        f"{' → '.join(loads)} (on {os.cpu_count()} CPUs).",
        "",
        *table,
        "",
        *[f"- {n}" for n in notes],
        *extra,
    ])
    print(report)
    write_results(args.out, report)


BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def write_results(path, report):
    """Replaces the generated block of `path` (between the markers), keeping the hand-written
    analysis around it; creates the file when missing."""
    block = f"{BEGIN}\n{report}\n{END}"
    text = open(path).read() if os.path.exists(path) else f"# Benchmark results\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
