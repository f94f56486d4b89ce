"""Sections measured against HashiCorp's `null` provider (and `terraform_data`): start-up and
RSS after the handshake, no-change plans of N resources with their requests and peak RSS, and
the apply latency of one `flux_resource_set`. See README.md for the method.
"""

import json
import os
import re
import shutil
import subprocess

from benchlib import (MAGIC_COOKIE, ProcessAccounting, Sample, Terraform, log, parse_time,
                      ratio_sample, verdict)

REQUIRED = """terraform {
  required_providers {
    flux = { source = "registry.terraform.io/fluxrs/flux" }
    null = { source = "registry.terraform.io/hashicorp/null" }
  }
}
"""


def flux_provider(kubeconfig):
    return f'provider "flux" {{\n  kubernetes = {{ config_path = "{kubeconfig}" }}\n}}\n'


def resource_sets(kubeconfig, n, prefix, value="1"):
    """N ResourceSets, each rendering one ConfigMap from one input."""
    return REQUIRED + flux_provider(kubeconfig) + f"""
resource "flux_resource_set" "rs" {{
  count     = {n}
  name      = "{prefix}-${{count.index}}"
  namespace = "flux-system"
  inputs    = [{{ value = "{value}" }}]
  resources = [{{
    apiVersion = "v1"
    kind       = "ConfigMap"
    metadata   = {{ name = "{prefix}-${{count.index}}", namespace = "flux-system" }}
    data       = {{ value = "<< inputs.value >>" }}
  }}]
}}
"""


def null_resources(n):
    return REQUIRED + f"""
resource "null_resource" "r" {{
  count    = {n}
  triggers = {{ index = count.index }}
}}
"""


def data_resources_like_ours(n, prefix):
    """N `terraform_data` holding the same value each `flux_resource_set` of `resource_sets` is
    configured with: Terraform's own cost of evaluating and planning that configuration."""
    return REQUIRED + f"""
resource "terraform_data" "r" {{
  count = {n}
  input = {{
    name      = "{prefix}-${{count.index}}"
    namespace = "flux-system"
    inputs    = [{{ value = "1" }}]
    resources = [{{
      apiVersion = "v1"
      kind       = "ConfigMap"
      metadata   = {{ name = "{prefix}-${{count.index}}", namespace = "flux-system" }}
      data       = {{ value = "<< inputs.value >>" }}
    }}]
  }}
}}
"""


def data_resources(n):
    return REQUIRED + f"""
resource "terraform_data" "r" {{
  count = {n}
  input = count.index
}}
"""


# ---------------------------------------------------------------------------------------------
# Start-up and RSS after the handshake
# ---------------------------------------------------------------------------------------------

# Starts the plugin with posix_spawn (stdout a pipe), reads up to the first newline (the
# handshake line), notes the time, reads VmRSS/RssAnon/RssFile of the process from /proc, kills
# it and prints "<seconds> <VmRSS KiB> <RssAnon KiB> <RssFile KiB> <handshake line>". A C
# launcher keeps the measuring side's own cost (a Python fork) out of a few-millisecond figure.
LAUNCHER = r"""
#define _GNU_SOURCE
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
extern char **environ;
static long field(const char *text, const char *name) {
  const char *p = strstr(text, name);
  return p ? atol(p + strlen(name)) : -1;
}
int main(int argc, char **argv) {
  int fds[2];
  if (argc < 2 || pipe(fds) != 0) return 2;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0);
  struct timespec t0, t1;
  pid_t pid;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (posix_spawn(&pid, argv[1], &fa, NULL, argv + 1, environ) != 0) return 3;
  close(fds[1]);
  char line[4096];
  size_t n = 0;
  while (n < sizeof line - 1) {
    ssize_t r = read(fds[0], line + n, 1);
    if (r <= 0 || line[n] == '\n') break;
    n++;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  line[n] = 0;
  char path[64], status[8192];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  size_t len = f ? fread(status, 1, sizeof status - 1, f) : 0;
  if (f) fclose(f);
  status[len] = 0;
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  printf("%.6f %ld %ld %ld %s\n",
         (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
         field(status, "VmRSS:"), field(status, "RssAnon:"), field(status, "RssFile:"), line);
  return 0;
}
"""


def build_launcher(root):
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise SystemExit("bench: a C compiler (cc) is needed for the start-up launcher")
    src, exe = os.path.join(root, "launcher.c"), os.path.join(root, "launcher")
    with open(src, "w") as f:
        f.write(LAUNCHER)
    subprocess.run([cc, "-O2", "-o", exe, src], check=True)
    return exe


def handshake(launcher, binary):
    """(seconds exec → handshake line, VmRSS, RssAnon, RssFile in KiB right after it). Both
    providers get the environment Terraform gives them (magic cookie, protocol versions 5 and 6,
    port range) and no client certificate, so both serve plaintext gRPC."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TF_PLUGIN_MAGIC_COOKIE": MAGIC_COOKIE,
        "PLUGIN_PROTOCOL_VERSIONS": "5,6",
        "PLUGIN_MIN_PORT": "10000",
        "PLUGIN_MAX_PORT": "25000",
    }
    out = subprocess.run([launcher, binary], env=env, capture_output=True, text=True,
                         check=True).stdout.split(" ", 4)
    if len(out) < 5 or not re.match(r"^1\|[56]\|(tcp|unix)\|", out[4]):
        raise SystemExit(f"{binary}: unexpected handshake {out!r}")
    return float(out[0]), int(out[1]), int(out[2]), int(out[3])


def section_startup(ctx):
    launcher = build_launcher(ctx.root)
    times, rss = {"ours": [], "null": []}, {"ours": [], "null": []}
    parts = {"ours": [], "null": []}
    for i in range(3 + ctx.args.startup_runs):
        for case, binary in (("ours", ctx.args.provider), ("null", ctx.args.null)):
            seconds, vm, anon, file_ = handshake(launcher, binary)
            if i >= 3:
                times[case].append(seconds)
                rss[case].append(vm)
                parts[case].append((anon, file_))
    t_ratio = ratio_sample(times["ours"], times["null"])
    r_ratio = ratio_sample(rss["ours"], rss["null"])
    rows = [
        ("Start-up: exec → handshake line", Sample(times["ours"]).fmt("ms"),
         Sample(times["null"]).fmt("ms"), t_ratio.fmt("x"), "≤ 0.25×",
         verdict(t_ratio.median <= 0.25)),
        ("RSS right after the handshake", Sample(rss["ours"]).fmt("MiB"),
         Sample(rss["null"]).fmt("MiB"), r_ratio.fmt("x"), "≤ 0.5×",
         verdict(r_ratio.median <= 0.5)),
    ]
    last = {c: parts[c][-1] for c in parts}
    notes = [("RSS after the handshake, last run: ours "
              f"{last['ours'][0] / 1024:.1f} MiB anonymous + {last['ours'][1] / 1024:.1f} MiB "
              f"file-backed, null {last['null'][0] / 1024:.1f} MiB + "
              f"{last['null'][1] / 1024:.1f} MiB.")]
    return rows, notes


# ---------------------------------------------------------------------------------------------
# Plan scaling, requests per plan, peak RSS during the plan
# ---------------------------------------------------------------------------------------------


DISCOVERY = re.compile(r"^(/api(/v1)?|/apis(/[^/]+(/[^/]+)?)?|/version|/openapi.*)/?$")


def classify(requests):
    """Counts the requests of one plan (our provider's, by User-Agent)."""
    counts = {"total": 0, "reads": 0, "writes": 0, "dry_runs": 0, "discovery": 0}
    kinds = {}
    for r in requests:
        counts["total"] += 1
        verb = r["verb"]
        if verb == "discovery" or DISCOVERY.match(r["path"]):
            counts["discovery"] += 1
        elif r["dryRun"]:
            counts["dry_runs"] += 1
        elif verb in ("get", "list", "watch"):
            counts["reads"] += 1
        else:
            counts["writes"] += 1
        key = f"{r['method']} {re.sub(r'/(bench|b[0-9]+)-[0-9]+', '/<name>', r['path'])}"
        kinds[key] = kinds.get(key, 0) + 1
    return counts, kinds


def section_plans(ctx):
    sizes, warmup, runs = ctx.sizes, ctx.args.warmup, ctx.args.runs
    sandbox = ctx.shared_sandbox()
    workspaces = {}
    for n in sizes:
        workspaces[("ours", n)] = Terraform(
            os.path.join(ctx.root, f"ours-{n}"), ctx.cli,
            resource_sets(sandbox.kubeconfig, n, f"b{n}"))
        workspaces[("null", n)] = Terraform(os.path.join(ctx.root, f"null-{n}"), ctx.cli,
                                            null_resources(n))
        workspaces[("data", n)] = Terraform(os.path.join(ctx.root, f"data-{n}"), ctx.cli,
                                            data_resources(n))
    big = max(sizes)
    workspaces[("data-like-ours", big)] = Terraform(
        os.path.join(ctx.root, f"data-like-ours-{big}"), ctx.cli,
        data_resources_like_ours(big, f"b{big}"))
    for (case, n), ws in workspaces.items():
        log(f"apply {case} N={n}")
        ws.apply("-parallelism=32")

    times = {key: [] for key in workspaces}
    requests = {n: [] for n in sizes}
    kinds = {}
    for i in range(warmup + runs):
        log(f"plan round {i + 1}/{warmup + runs}{' (warm-up)' if i < warmup else ''}")
        for n in sizes:
            for case in ("ours", "null", "data", "data-like-ours"):
                if (case, n) not in workspaces:
                    continue
                ws = workspaces[(case, n)]
                if case == "ours":
                    sandbox.clear_requests()
                elapsed = ws.plan_no_changes()
                if case == "ours":
                    counts, kinds[n] = classify(sandbox.our_requests())
                if i >= warmup:
                    times[(case, n)].append(elapsed)
                    if case == "ours":
                        requests[n].append(counts)

    rss = {"ours": [], "null": []}
    acct = ProcessAccounting(os.path.join(ctx.root, "rss"))
    n = max(sizes)
    for i in range(warmup + runs):
        log(f"memory round {i + 1}/{warmup + runs}{' (warm-up)' if i < warmup else ''}")
        for case in ("ours", "null"):
            acct.reset()
            workspaces[(case, n)].plan_no_changes(cli_config=ctx.cli_rss, env=acct.env())
            _, peak, _ = acct.read()
            if i >= warmup:
                rss[case].append(peak)

    rows, notes = [], []
    r_ratio = ratio_sample(rss["ours"], rss["null"])
    ok = r_ratio.median <= 0.5 and Sample(rss["ours"]).median < 30 * 1024
    rows.append((f"Peak RSS of the provider, plan of N = {n}", Sample(rss["ours"]).fmt("MiB"),
                 Sample(rss["null"]).fmt("MiB"), r_ratio.fmt("x"), "≤ 0.5× and < 30 MiB",
                 verdict(ok)))
    for size in sizes:
        o, nl, d = (Sample(times[(c, size)]) for c in ("ours", "null", "data"))
        ratio = ratio_sample(times[("ours", size)], times[("null", size)])
        target, met = ("≤ 1.1×", verdict(ratio.median <= 1.1)) if size == n else ("—", "—")
        rows.append((f"No-change plan, N = {size} (terraform_data: {d.fmt('s')})",
                     o.fmt("s"), nl.fmt("s"), ratio.fmt("x"), target, met))
    like = Sample(times[("data-like-ours", n)])
    ratio = ratio_sample(times[("ours", n)], times[("data-like-ours", n)])
    rows.append((f"*Floor for this configuration:* no-change plan, N = {n}, ours vs "
                 "`terraform_data` holding the same value as each `flux_resource_set`",
                 Sample(times[("ours", n)]).fmt("s"), like.fmt("s"), ratio.fmt("x"), "—", "—"))
    if 100 in sizes and n == 500:
        g_ours = ratio_sample(times[("ours", 500)], times[("ours", 100)])
        g_null = ratio_sample(times[("null", 500)], times[("null", 100)])
        g_data = ratio_sample(times[("data", 500)], times[("data", 100)])
        rows.append(("Plan growth N = 100 → 500 (terraform_data: "
                     f"{g_data.fmt('x')})", g_ours.fmt("x"), g_null.fmt("x"),
                     "—", "≤ 5.5×", verdict(g_ours.median <= 5.5)))
    for size in sizes:
        tot = Sample(c["total"] for c in requests[size])
        wr = Sample(c["writes"] for c in requests[size])
        rd = Sample(c["reads"] for c in requests[size])
        dr = Sample(c["dry_runs"] for c in requests[size])
        disc = Sample(c["discovery"] for c in requests[size])
        objects = 2 * size  # N ResourceSets + the N ConfigMaps in their inventories
        ok = max(wr.values) == 0 and max(tot.values) <= objects + 20
        rows.append((f"Requests per no-change plan, N = {size} ({objects} objects)",
                     f"{tot.median:g} ({rd.median:g} reads, {dr.median:g} dry-runs, "
                     f"{disc.median:g} discovery, {wr.median:g} writes)",
                     "—", f"{tot.median / objects:.3f} per object",
                     "≤ 1 per object + constant (20), 0 writes", verdict(ok)))
        notes.append(f"Requests at N = {size} by kind (last run): " + ", ".join(
            f"`{k}` × {v}" for k, v in sorted(kinds[size].items())))
    return rows, notes


# ---------------------------------------------------------------------------------------------
# Apply latency
# ---------------------------------------------------------------------------------------------


def ready_time(requests, name):
    """Arrival time of the simulator's status write that set Ready=True on ResourceSet `name`."""
    for r in requests:
        if r["method"] == "PATCH" and r["path"].endswith(f"/resourcesets/{name}/status"):
            status = json.loads(r.get("body") or "{}").get("status", {})
            for c in status.get("conditions", []):
                if c.get("type") == "Ready" and c.get("status") == "True":
                    return parse_time(r["time"])
    return None


def provider_log_time(log_path, marker, rpc):
    """Timestamp of the provider's last `marker` log line for `rpc`."""
    found = None
    with open(log_path) as f:
        for line in f:
            if f"provider.terraform-provider-flux: {marker}" in line and f"tf_rpc={rpc}" in line:
                m = re.search(r"timestamp=(\S+)", line)
                found = parse_time(m.group(1))
    return found


def terraform_received_time(log_path):
    """Terraform's own log line right after ApplyResourceChange returned (it writes the new state
    object); Terraform's timestamps are to the millisecond."""
    seen_call = False
    with open(log_path) as f:
        for line in f:
            if "GRPCProvider.v6: ApplyResourceChange" in line:
                seen_call = True
            elif seen_call and "writeResourceInstanceState to workingState" in line:
                return parse_time(line.split()[0])
    return None


def section_latency(ctx):
    sandbox = ctx.shared_sandbox()
    warmup, applies = ctx.args.warmup, ctx.args.applies
    name = "bench-latency"
    config = lambda v: resource_sets(sandbox.kubeconfig, 1, name, value=str(v))  # noqa: E731
    ws = Terraform(os.path.join(ctx.root, "latency"), ctx.cli, config(0))
    ws.apply()
    latencies, rpc_totals, received_by_tf = [], [], []
    log_path = os.path.join(ctx.root, "latency", "provider.log")
    log("apply latency")
    for i in range(1, warmup + applies + 1):
        ws.write(config(i))
        if os.path.exists(log_path):
            os.remove(log_path)
        sandbox.clear_requests()
        ws.apply(env={"TF_LOG_PROVIDER": "debug", "TF_LOG_CORE": "trace",
                      "TF_LOG_PATH": log_path})
        tf_got = terraform_received_time(log_path)
        ready = ready_time(sandbox.requests(), f"{name}-0")
        served = provider_log_time(log_path, "served", "ApplyResourceChange")
        received = provider_log_time(log_path, "received", "ApplyResourceChange")
        if ready is None or served is None or received is None or tf_got is None:
            raise SystemExit(f"apply {i}: ready={ready} served={served} received={received}")
        if i > warmup:
            latencies.append((served - ready).total_seconds())
            rpc_totals.append((served - received).total_seconds())
            received_by_tf.append((tf_got - ready).total_seconds())
    lat, rpc, tf_lat = Sample(latencies), Sample(rpc_totals), Sample(received_by_tf)
    rows = [
        (f"Apply latency: Ready → provider answers ApplyResourceChange (its `served` log line; "
         f"{applies} applies)", lat.fmt("ms"), "—", "—", "≤ 100 ms median",
         verdict(lat.median <= 0.1)),
        ("Apply latency: Ready → Terraform has the answer (its next log line)",
         tf_lat.fmt("ms"), "—", "—", "≤ 100 ms median", verdict(tf_lat.median <= 0.1)),
    ]
    notes = [f"Whole ApplyResourceChange (received → served) over the same applies: "
             f"{rpc.fmt('ms')}."]
    return rows, notes


SECTIONS = [
    ("startup", section_startup),
    ("plans", section_plans),
    ("latency", section_latency),
]
