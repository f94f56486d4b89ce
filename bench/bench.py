#!/usr/bin/env python3
"""The benchmark suite behind `make bench` (issue 8). `bench/run.sh` builds the binaries, fetches
the peer and calls this script; see `bench/README.md` for the method.

Everything runs in one temporary directory: the sandbox (`kube-sandbox serve --operator-sim`,
HTTPS with a generated CA and a bearer token), Terraform workspaces driving both providers through
`dev_overrides`, and a Git smart-HTTP server (`bench/git_http.py`). Each metric is a median over
`--runs` measured runs after `--warmup` warm-up runs, with min-max; ours and the peer are measured
alternately, round by round, and each ratio is the median of the per-round ratios.

Prints the Markdown report on stdout and writes it to `--out`.
"""

import argparse
import base64
import datetime
import json
import os
import platform
import re
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

MAGIC_COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OPERATOR_INSTALL = os.path.join(REPO, "tests/sandbox/fixtures/operator-install.yaml")


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Statistics and formatting
# ---------------------------------------------------------------------------------------------


class Sample:
    """Measured values of one metric (after warm-up)."""

    def __init__(self, values):
        self.values = list(values)

    @property
    def median(self):
        return statistics.median(self.values)

    def fmt(self, unit):
        lo, hi = min(self.values), max(self.values)
        return f"{fmt(self.median, unit)} ({fmt(lo, unit)}–{fmt(hi, unit)})"


def fmt(value, unit):
    if unit == "ms":
        return f"{value * 1000:.1f} ms" if value < 1 else f"{value * 1000:.0f} ms"
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "MiB":
        return f"{value / 1024:.1f} MiB"
    if unit == "x":
        return f"{value:.2f}×"
    if unit == "n":
        return f"{value:g}"
    return str(value)


def ratio_sample(ours, peer):
    return Sample(a / b for a, b in zip(ours, peer))


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------


class Sandbox:
    """`kube-sandbox serve --operator-sim` with the Flux Operator fixture installed."""

    def __init__(self, binary, workdir, install_operator=True):
        os.makedirs(workdir, exist_ok=True)
        self.kubeconfig = os.path.join(workdir, "kubeconfig")
        self.proc = subprocess.Popen(
            [binary, "serve", "--operator-sim", "--kubeconfig", self.kubeconfig],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("ready https://127.0.0.1:"):
            raise SystemExit(f"kube-sandbox did not start: {line!r}")
        self.url = line.split()[1]
        text = open(self.kubeconfig).read()
        self.token = re.search(r"token: (\S+)", text).group(1)
        ca = base64.b64decode(
            re.search(r"certificate-authority-data: (\S+)", text).group(1)
        ).decode()
        self.tls = ssl.create_default_context(cadata=ca)
        if install_operator:
            self.kubectl("apply", "--server-side", "-f", OPERATOR_INSTALL)
            self.kubectl(
                "wait", "--for=condition=Available", "-n", "flux-system",
                "deployment/flux-operator", "--timeout=60s",
            )

    def kubectl(self, *args):
        subprocess.run(
            ["kubectl", "--kubeconfig", self.kubeconfig, *args],
            check=True, stdout=subprocess.DEVNULL,
        )

    def admin(self, method, path):
        req = urllib.request.Request(
            self.url + path, method=method,
            headers={"Authorization": "Bearer " + self.token},
        )
        with urllib.request.urlopen(req, context=self.tls) as resp:
            body = resp.read()
        return json.loads(body) if body.strip() else None

    def clear_requests(self):
        self.admin("DELETE", "/sandbox/requests")

    def requests(self):
        return self.admin("GET", "/sandbox/requests")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Terraform:
    """A workspace directory and the CLI configuration its commands use."""

    def __init__(self, directory, cli_config, config):
        self.dir = directory
        self.cli_config = cli_config
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "main.tf"), "w") as f:
            f.write(config)

    def run(self, *args, env=None, codes=(0,), cli_config=None):
        full_env = dict(os.environ)
        for key in ("TF_LOG", "TF_LOG_PROVIDER", "TF_LOG_CORE", "TF_LOG_PATH"):
            full_env.pop(key, None)
        full_env.update(
            TF_CLI_CONFIG_FILE=cli_config or self.cli_config,
            TF_IN_AUTOMATION="1",
            CHECKPOINT_DISABLE="1",
        )
        full_env.update(env or {})
        start = time.perf_counter()
        proc = subprocess.run(
            ["terraform", *args, "-input=false", "-no-color"],
            cwd=self.dir, env=full_env, capture_output=True, text=True,
        )
        elapsed = time.perf_counter() - start
        if proc.returncode not in codes:
            raise SystemExit(
                f"terraform {' '.join(args)} in {self.dir} exited {proc.returncode}:\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return elapsed, proc

    def apply(self, *extra, env=None):
        return self.run("apply", "-auto-approve", *extra, env=env)

    def plan_no_changes(self, cli_config=None, env=None):
        """Times a `terraform plan` that must find no changes (exit code 0)."""
        elapsed, _ = self.run(
            "plan", "-detailed-exitcode", "-lock=false", codes=(0,),
            cli_config=cli_config, env=env,
        )
        return elapsed


def write_cli_config(path, overrides):
    lines = "\n".join(f'    "{src}" = "{d}"' for src, d in overrides.items())
    with open(path, "w") as f:
        f.write(
            f"provider_installation {{\n  dev_overrides {{\n{lines}\n  }}\n  direct {{}}\n}}\n"
        )


def link_plugin(directory, name, real):
    os.makedirs(directory, exist_ok=True)
    os.symlink(real, os.path.join(directory, name))


def wrap_plugin(directory, name, real):
    """A plugin executable that runs `real` under `/usr/bin/time -f %M`, each process writing
    its peak RSS (KiB) to `$BENCH_RSS_DIR/<pid>.rss`. `time` writes to that file, never to
    stdout, so the plugin's stdout stays the handshake line alone."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(
            "#!/bin/sh\n"
            f'exec /usr/bin/time -f %M -o "$BENCH_RSS_DIR/$$.rss" "{real}" "$@"\n'
        )
    os.chmod(path, 0o755)


NODELAY_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
/* Diagnostic only: sets TCP_NODELAY on every accepted socket (the provider's gRPC
   connections), which the provider does not do itself. */
int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  static int (*real)(int, struct sockaddr *, socklen_t *, int);
  if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
  int s = real(fd, addr, len, flags);
  if (s >= 0) { int one = 1; setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); }
  return s;
}
"""


def nodelay_plugin(root, directory, real):
    """A plugin directory whose `terraform-provider-flux` runs `real` with an LD_PRELOAD shim
    that sets TCP_NODELAY on accepted sockets; `None` without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    src, lib = os.path.join(root, "nodelay.c"), os.path.join(root, "nodelay.so")
    with open(src, "w") as f:
        f.write(NODELAY_SHIM)
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", lib, src, "-ldl"], check=True)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "terraform-provider-flux")
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nLD_PRELOAD="{lib}" exec "{real}" "$@"\n')
    os.chmod(path, 0o755)
    return directory


# ---------------------------------------------------------------------------------------------
# Configurations
# ---------------------------------------------------------------------------------------------

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


def data_resources(n):
    return REQUIRED + f"""
resource "terraform_data" "r" {{
  count = {n}
  input = count.index
}}
"""


# ---------------------------------------------------------------------------------------------
# 1. Start-up
# ---------------------------------------------------------------------------------------------


def handshake_seconds(binary):
    """Exec to the first stdout line (the go-plugin handshake), then kill the process. Both
    providers get the environment Terraform gives them (magic cookie, protocol versions 5 and 6,
    port range) and no client certificate, so both serve plaintext gRPC."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TF_PLUGIN_MAGIC_COOKIE": MAGIC_COOKIE,
        "PLUGIN_PROTOCOL_VERSIONS": "5,6",
        "PLUGIN_MIN_PORT": "10000",
        "PLUGIN_MAX_PORT": "25000",
    }
    start = time.perf_counter()
    proc = subprocess.Popen(
        [binary], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    proc.kill()
    proc.wait()
    if not re.match(rb"^1\|[56]\|(tcp|unix)\|", line):
        raise SystemExit(f"{binary}: unexpected handshake {line!r}")
    return elapsed


def bench_startup(ours, peer, warmup, runs):
    a, b = [], []
    for i in range(warmup + runs):
        x, y = handshake_seconds(ours), handshake_seconds(peer)
        if i >= warmup:
            a.append(x)
            b.append(y)
    return Sample(a), Sample(b), ratio_sample(a, b)


# ---------------------------------------------------------------------------------------------
# 3 + 4. Plan scaling and requests per plan (2. memory uses the same workspaces)
# ---------------------------------------------------------------------------------------------


DISCOVERY = re.compile(r"^(/api(/v1)?|/apis(/[^/]+(/[^/]+)?)?|/version|/openapi.*)/?$")


def classify(requests, background):
    """Counts the provider's requests of one plan. The sandbox records every request, including
    the operator simulator's own polling, and neither client sends a User-Agent; the polling
    requests are recognised by their (verb, path) as sampled while idle (`background`)."""
    counts = {"total": 0, "reads": 0, "writes": 0, "dry_runs": 0, "discovery": 0,
              "excluded_sim_polls": 0}
    kinds = {}
    for r in requests:
        if (r["verb"], r["path"]) in background:
            counts["excluded_sim_polls"] += 1
            continue
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


def idle_background(sandbox, seconds=3.0):
    sandbox.clear_requests()
    time.sleep(seconds)
    return {(r["verb"], r["path"]) for r in sandbox.requests()}


def bench_plans(root, sandbox, cli, cli_rss, cli_nodelay, sizes, warmup, runs):
    workspaces = {}
    for n in sizes:
        workspaces[("ours", n)] = Terraform(
            os.path.join(root, f"ours-{n}"), cli, resource_sets(sandbox.kubeconfig, n, f"b{n}")
        )
        workspaces[("null", n)] = Terraform(os.path.join(root, f"null-{n}"), cli, null_resources(n))
        workspaces[("data", n)] = Terraform(os.path.join(root, f"data-{n}"), cli, data_resources(n))
    for (case, n), ws in workspaces.items():
        log(f"apply {case} N={n}")
        ws.apply("-parallelism=32")
    background = idle_background(sandbox)
    log(f"sandbox background polls (excluded from request counts): {sorted(background)}")

    times = {key: [] for key in workspaces}
    cases = ("ours", "null", "data") + (("ours-nodelay",) if cli_nodelay else ())
    for n in sizes:
        times[("ours-nodelay", n)] = []
    requests = {n: [] for n in sizes}
    kinds = {}
    for i in range(warmup + runs):
        log(f"plan round {i + 1}/{warmup + runs}{' (warm-up)' if i < warmup else ''}")
        for n in sizes:
            for case in cases:
                if case == "ours-nodelay":
                    elapsed = workspaces[("ours", n)].plan_no_changes(cli_config=cli_nodelay)
                    if i >= warmup:
                        times[(case, n)].append(elapsed)
                    continue
                ws = workspaces[(case, n)]
                if case == "ours":
                    sandbox.clear_requests()
                elapsed = ws.plan_no_changes()
                if case == "ours":
                    counts, kinds[n] = classify(sandbox.requests(), background)
                if i >= warmup:
                    times[(case, n)].append(elapsed)
                    if case == "ours":
                        requests[n].append(counts)

    rss = {"ours": [], "null": []}
    rss_dir = os.path.join(root, "rss")
    os.makedirs(rss_dir, exist_ok=True)
    n = max(sizes)
    for i in range(warmup + runs):
        log(f"memory round {i + 1}/{warmup + runs}{' (warm-up)' if i < warmup else ''}")
        for case in ("ours", "null"):
            for f in os.listdir(rss_dir):
                os.remove(os.path.join(rss_dir, f))
            workspaces[(case, n)].plan_no_changes(
                cli_config=cli_rss, env={"BENCH_RSS_DIR": rss_dir}
            )
            peaks = [int(open(os.path.join(rss_dir, f)).read().split()[-1])
                     for f in os.listdir(rss_dir)]
            if not peaks:
                raise SystemExit(f"{case}: the RSS wrapper recorded nothing")
            if i >= warmup:
                rss[case].append(max(peaks))
    return times, requests, kinds, rss


# ---------------------------------------------------------------------------------------------
# 5. Apply latency
# ---------------------------------------------------------------------------------------------


def parse_time(text):
    text = text.rstrip("Z")
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.timezone.utc)


def ready_time(requests, name):
    """Arrival time of the simulator's status write that set Ready=True on ResourceSet `name`."""
    for r in requests:
        if r["method"] == "PATCH" and r["path"].endswith(f"/resourcesets/{name}/status"):
            status = json.loads(r.get("body") or "{}").get("status", {})
            for c in status.get("conditions", []):
                if c.get("type") == "Ready" and c.get("status") == "True":
                    return parse_time(r["time"])
    return None


def served_time(log_path, rpc):
    """Timestamp of the provider's own `served` log line for `rpc` (its answer)."""
    found = None
    with open(log_path) as f:
        for line in f:
            if "provider.terraform-provider-flux: served" in line and f"tf_rpc={rpc}" in line:
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


def bench_apply_latency(root, sandbox, cli, warmup, applies):
    name = "bench-latency"
    config = lambda v: resource_sets(sandbox.kubeconfig, 1, name, value=str(v))  # noqa: E731
    ws = Terraform(os.path.join(root, "latency"), cli, config(0))
    ws.apply()
    latencies, rpc_totals, received_by_tf = [], [], []
    log_path = os.path.join(root, "latency", "provider.log")
    for i in range(1, warmup + applies + 1):
        with open(os.path.join(ws.dir, "main.tf"), "w") as f:
            f.write(config(i))
        if os.path.exists(log_path):
            os.remove(log_path)
        sandbox.clear_requests()
        ws.apply(env={"TF_LOG_PROVIDER": "debug", "TF_LOG_CORE": "trace",
                      "TF_LOG_PATH": log_path})
        tf_got = terraform_received_time(log_path)
        ready = ready_time(sandbox.requests(), f"{name}-0")
        served = served_time(log_path, "ApplyResourceChange")
        received = None
        with open(log_path) as f:
            for line in f:
                if "terraform-provider-flux: received" in line and \
                        "tf_rpc=ApplyResourceChange" in line:
                    received = parse_time(re.search(r"timestamp=(\S+)", line).group(1))
        if ready is None or served is None or received is None or tf_got is None:
            raise SystemExit(f"apply {i}: ready={ready} served={served} received={received}")
        if i > warmup:
            latencies.append((served - ready).total_seconds())
            rpc_totals.append((served - received).total_seconds())
            received_by_tf.append((tf_got - ready).total_seconds())
    return Sample(latencies), Sample(rpc_totals), Sample(received_by_tf)


# ---------------------------------------------------------------------------------------------
# 6. Git bootstrap
# ---------------------------------------------------------------------------------------------


def git(cwd, *args, stdin=None):
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
    subprocess.run(["git", *args], cwd=cwd, env=env, input=stdin, check=True,
                   stdout=subprocess.DEVNULL)


def make_repo(path, commits, files):
    """A bare repository whose `main` has `commits` commits over `files` files: the first commit
    adds every file, each later one changes one file. One `git fast-import` run."""
    git(os.path.dirname(path), "init", "-q", "--bare", "-b", "main", path)
    out = bytearray()
    for i in range(commits):
        msg = f"commit {i}\n".encode()
        out += (f"commit refs/heads/main\nmark :{i + 1}\n"
                f"author Someone <someone@example.com> {1700000000 + i} +0000\n"
                f"committer Someone <someone@example.com> {1700000000 + i} +0000\n"
                f"data {len(msg)}\n").encode() + msg
        for j in (range(files) if i == 0 else [i % files]):
            content = f"file {j}, version {i}\n".encode()
            out += f"M 100644 inline file-{j:04}.txt\ndata {len(content)}\n".encode()
            out += content + b"\n"
    git(path, "fast-import", "--quiet", stdin=bytes(out))


def bootstrap_config(kubeconfig, url):
    return """terraform {
  required_providers {
    flux = { source = "registry.terraform.io/fluxrs/flux" }
  }
}
""" + f"""provider "flux" {{
  kubernetes = {{ config_path = "{kubeconfig}" }}
  git = {{
    http = {{
      username            = "bot"
      password            = "bench-password"
      allow_insecure_http = true
    }}
    author_name  = "Terraform"
    author_email = "terraform@example.com"
  }}
}}

resource "flux_bootstrap_git" "this" {{
  url      = "{url}"
  path     = "clusters/bench"
  interval = "1h"
  distribution = {{
    version = "2.7.x"
  }}
  operator = {{
    manifests = file("{OPERATOR_INSTALL}")
  }}
  timeouts {{
    create = "120s"
  }}
}}
"""


def git_phase(log_path):
    """Seconds from the provider's `cloning git repository` log line to its `pushed` line: the
    provider's own Git work (clone, push-access check, commit, push)."""
    start = end = None
    with open(log_path) as f:
        for line in f:
            m = re.search(r"timestamp=(\S+)", line)
            if not m:
                continue
            if "terraform-provider-flux: cloning git repository" in line and start is None:
                start = parse_time(m.group(1))
            elif "terraform-provider-flux: pushed" in line:
                end = parse_time(m.group(1))
    if start is None or end is None:
        raise SystemExit(f"{log_path}: no clone/push log lines")
    return (end - start).total_seconds()


def bench_git(root, sandbox_bin, cli, warmup, runs):
    repos = os.path.join(root, "git-templates")
    served = os.path.join(root, "git-served")
    os.makedirs(repos)
    os.makedirs(served)
    log("generating repositories (1 commit; 5,000 commits over 2,000 files)")
    make_repo(os.path.join(repos, "small.git"), 1, 1)
    make_repo(os.path.join(repos, "large.git"), 5000, 2000)
    server = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "git_http.py"), served, "bot", "bench-password"],
        stdout=subprocess.PIPE, start_new_session=True,
    )
    try:
        base = server.stdout.readline().decode().split()[1]
        times = {"small": [], "large": []}
        phases = {"small": [], "large": []}
        for i in range(warmup + runs):
            log(f"git round {i + 1}/{warmup + runs}{' (warm-up)' if i < warmup else ''}")
            for case in ("small", "large"):
                repo = f"{case}-{i}.git"
                shutil.copytree(os.path.join(repos, f"{case}.git"), os.path.join(served, repo))
                sandbox = Sandbox(sandbox_bin, os.path.join(root, f"git-sb-{case}-{i}"),
                                  install_operator=False)
                try:
                    ws = Terraform(os.path.join(root, f"git-{case}-{i}"), cli,
                                   bootstrap_config(sandbox.kubeconfig, f"{base}/{repo}"))
                    log_path = os.path.join(ws.dir, "provider.log")
                    elapsed, _ = ws.apply(env={"TF_LOG_PROVIDER": "debug",
                                               "TF_LOG_PATH": log_path})
                finally:
                    sandbox.stop()
                if i >= warmup:
                    times[case].append(elapsed)
                    phases[case].append(git_phase(log_path))
        return (Sample(times["small"]), Sample(times["large"]),
                ratio_sample(times["large"], times["small"]),
                Sample(phases["small"]), Sample(phases["large"]),
                ratio_sample(phases["large"], phases["small"]))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


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


def verdict(ok):
    return "yes" if ok else "**no**"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--provider", required=True)
    p.add_argument("--sandbox", required=True)
    p.add_argument("--null", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--startup-runs", type=int, default=30)
    p.add_argument("--applies", type=int, default=20)
    p.add_argument("--sizes", default="10,100,500")
    p.add_argument("--skip", default="", help="comma-separated: startup,plans,latency,git")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    sizes = [int(s) for s in args.sizes.split(",")]
    started = time.time()

    root = tempfile.mkdtemp(prefix="flux-bench-")
    plain, wrapped = os.path.join(root, "plugins"), os.path.join(root, "plugins-rss")
    link_plugin(plain, "terraform-provider-flux", args.provider)
    link_plugin(plain, "terraform-provider-null", args.null)
    wrap_plugin(wrapped, "terraform-provider-flux", args.provider)
    wrap_plugin(wrapped, "terraform-provider-null", args.null)
    cli, cli_rss = os.path.join(root, "cli.tfrc"), os.path.join(root, "cli-rss.tfrc")
    sources = ("registry.terraform.io/fluxrs/flux", "registry.terraform.io/hashicorp/null")
    write_cli_config(cli, {s: plain for s in sources})
    write_cli_config(cli_rss, {s: wrapped for s in sources})
    cli_nodelay = None
    if nodelay_plugin(root, os.path.join(root, "plugins-nodelay"), args.provider):
        cli_nodelay = os.path.join(root, "cli-nodelay.tfrc")
        write_cli_config(cli_nodelay, {sources[0]: os.path.join(root, "plugins-nodelay"),
                                       sources[1]: plain})

    rows, notes = [], []
    sandbox = None
    try:
        if "startup" not in skip:
            log("start-up")
            s_ours, s_null, s_ratio = bench_startup(args.provider, args.null, 3,
                                                    args.startup_runs)
            rows.append(("Start-up: exec → handshake line", s_ours.fmt("ms"), s_null.fmt("ms"),
                         s_ratio.fmt("x"), "≤ 0.5×", verdict(s_ratio.median <= 0.5)))
        if not skip >= {"plans", "latency"}:
            sandbox = Sandbox(args.sandbox, os.path.join(root, "sandbox"))
        if "plans" not in skip:
            times, reqs, kinds, rss = bench_plans(root, sandbox, cli, cli_rss, cli_nodelay,
                                                  sizes, args.warmup, args.runs)
            n = max(sizes)
            r_ours, r_null = Sample(rss["ours"]), Sample(rss["null"])
            r_ratio = ratio_sample(rss["ours"], rss["null"])
            ok = r_ratio.median <= 0.5 and r_ours.median < 30 * 1024
            rows.append((f"Peak RSS of the provider, plan of N = {n}", r_ours.fmt("MiB"),
                         r_null.fmt("MiB"), r_ratio.fmt("x"), "≤ 0.5× and < 30 MiB",
                         verdict(ok)))
            for size in sizes:
                o, nl, d = (Sample(times[(c, size)]) for c in ("ours", "null", "data"))
                ratio = ratio_sample(times[("ours", size)], times[("null", size)])
                target, met = ("≤ 1.1×", verdict(ratio.median <= 1.1)) if size == n else ("—", "—")
                rows.append((f"No-change plan, N = {size} (terraform_data: {d.fmt('s')})",
                             o.fmt("s"), nl.fmt("s"), ratio.fmt("x"), target, met))
            if cli_nodelay:
                for size in sizes:
                    o = Sample(times[("ours-nodelay", size)])
                    ratio = ratio_sample(times[("ours-nodelay", size)], times[("null", size)])
                    rows.append((f"*Diagnostic:* no-change plan, N = {size}, ours with "
                                 "TCP_NODELAY forced on its gRPC socket (LD_PRELOAD shim)",
                                 o.fmt("s"), Sample(times[("null", size)]).fmt("s"),
                                 ratio.fmt("x"), "—", "—"))
            if 100 in sizes and n == 500:
                g_ours = ratio_sample(times[("ours", 500)], times[("ours", 100)])
                g_null = ratio_sample(times[("null", 500)], times[("null", 100)])
                g_data = ratio_sample(times[("data", 500)], times[("data", 100)])
                rows.append(("Plan growth N = 100 → 500 (terraform_data: "
                             f"{g_data.fmt('x')})", g_ours.fmt("x"), g_null.fmt("x"),
                             "—", "≤ 5.5×", verdict(g_ours.median <= 5.5)))
            for size in sizes:
                tot = Sample(c["total"] for c in reqs[size])
                wr = Sample(c["writes"] for c in reqs[size])
                rd = Sample(c["reads"] for c in reqs[size])
                dr = Sample(c["dry_runs"] for c in reqs[size])
                disc = Sample(c["discovery"] for c in reqs[size])
                objects = 2 * size  # N ResourceSets + the N ConfigMaps in their inventories
                constant = tot.median - objects
                ok = max(wr.values) == 0 and max(tot.values) <= objects + 20
                rows.append((f"Requests per no-change plan, N = {size} ({objects} objects)",
                             f"{tot.median:g} ({rd.median:g} reads, {dr.median:g} dry-runs, "
                             f"{disc.median:g} discovery, {wr.median:g} writes)",
                             "—", f"{tot.median / objects:.2f} per object",
                             "≤ 1 per object + constant (20), 0 writes",
                             verdict(ok) + f" (excess over objects: {constant:g})"))
                notes.append(f"Requests at N = {size} by kind (last run): " + ", ".join(
                    f"`{k}` × {v}" for k, v in sorted(kinds[size].items())))
        if "latency" not in skip:
            log("apply latency")
            lat, rpc, tf_lat = bench_apply_latency(root, sandbox, cli, args.warmup, args.applies)
            rows.append((f"Apply latency: Ready → provider answers ApplyResourceChange "
                         f"(its `served` log line; {args.applies} applies)", lat.fmt("ms"), "—",
                         "—", "≤ 100 ms median", verdict(lat.median <= 0.1)))
            rows.append(("Apply latency: Ready → Terraform has the answer (its next log line)",
                         tf_lat.fmt("ms"), "—", "—", "≤ 100 ms median",
                         verdict(tf_lat.median <= 0.1)))
            notes.append(f"Whole ApplyResourceChange (received → served) over the same "
                         f"applies: {rpc.fmt('ms')}.")
        if sandbox:
            sandbox.stop()
            sandbox = None
        if "git" not in skip:
            small, large, ratio, g_small, g_large, g_ratio = bench_git(
                root, args.sandbox, cli, args.warmup, args.runs)
            rows.append(("Bootstrap, provider's Git work (clone → pushed): 5,000 commits / "
                         "2,000 files vs 1 commit", g_large.fmt("ms"), g_small.fmt("ms"),
                         g_ratio.fmt("x"), "≤ 1.5×", verdict(g_ratio.median <= 1.5)))
            rows.append(("Bootstrap, whole `flux_bootstrap_git` create (incl. the simulator's "
                         "sync): 5,000 commits / 2,000 files vs 1 commit", large.fmt("s"),
                         small.fmt("s"), ratio.fmt("x"), "≤ 1.5×",
                         verdict(ratio.median <= 1.5)))
    finally:
        if sandbox:
            sandbox.stop()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            log(f"kept {root}")

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    table = ["| metric | ours | peer | ratio | target | met? |",
             "|---|---|---|---|---|---|"]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    report = "\n".join([
        f"Run: {now}, {args.runs} measured runs after {args.warmup} warm-up "
        f"(start-up: {args.startup_runs} after 3), total {time.time() - started:.0f} s.",
        f"Machine: {machine()}.",
        "",
        *table,
        "",
        *[f"- {n}" for n in notes],
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
