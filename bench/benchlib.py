"""Shared parts of the benchmark sections (`bench.py` drives them): statistics and formatting,
the sandbox and Git server processes, Terraform workspaces, plugin directories, and the
per-process accounting wrapper.

A section is a function `run(ctx) -> list[Row]` plus notes (see `bench.py`); everything a section
needs from the run (binaries, the temporary root, CLI configurations, options) is on `ctx`.
"""

import base64
import datetime
import json
import os
import re
import signal
import ssl
import statistics
import subprocess
import sys
import time
import urllib.request

MAGIC_COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OPERATOR_INSTALL = os.path.join(REPO, "tests/sandbox/fixtures/operator-install.yaml")
# Our provider's User-Agent on API requests (src/cluster/config.rs): how its requests are told
# apart from the operator simulator's in the sandbox recorder.
OUR_USER_AGENT = "terraform-provider-flux/"


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def cache_dir(*parts):
    """A directory under the benchmark's cache outside the clone (`$BENCH_CACHE`, default
    `${XDG_CACHE_HOME:-~/.cache}/terraform-provider-flux-bench`)."""
    base = os.environ.get("BENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
        "terraform-provider-flux-bench")
    path = os.path.join(base, *parts)
    os.makedirs(path, exist_ok=True)
    return path


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
    if unit == "MiB":  # value in KiB
        return f"{value / 1024:.1f} MiB"
    if unit == "bytes":
        if value >= 1024 * 1024:
            return f"{value / 1048576:.2f} MiB"
        if value >= 1024:
            return f"{value / 1024:.1f} KiB"
        return f"{value:g} B"
    if unit == "x":
        return f"{value:.2f}×"
    if unit == "n":
        return f"{value:g}"
    return str(value)


def ratio_sample(ours, peer):
    return Sample(a / b for a, b in zip(ours, peer))


def verdict(ok):
    return "yes" if ok else "**no**"


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------


class Sandbox:
    """`kube-sandbox serve --operator-sim`, optionally with the Flux Operator fixture installed."""

    def __init__(self, binary, workdir, install_operator=True, extra_args=()):
        os.makedirs(workdir, exist_ok=True)
        self.kubeconfig = os.path.join(workdir, "kubeconfig")
        self.proc = subprocess.Popen(
            [binary, "serve", "--operator-sim", "--kubeconfig", self.kubeconfig, *extra_args],
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

    def our_requests(self):
        """The recorded requests our provider made (by its User-Agent)."""
        return [r for r in self.requests()
                if (r.get("userAgent") or "").startswith(OUR_USER_AGENT)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class GitServer:
    """`git_http.py` (the real `git http-backend` behind basic auth) serving `root`; every
    request is logged (time, method, path, User-Agent, bytes in and out) for the byte counts."""

    def __init__(self, root, workdir):
        self.log_path = os.path.join(workdir, "git-http.log")
        open(self.log_path, "w").close()
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "git_http.py"), root, "bot", "bench-password"],
            stdout=subprocess.PIPE, start_new_session=True,
            env=dict(os.environ, GIT_HTTP_LOG=self.log_path),
        )
        self.base = self.proc.stdout.readline().decode().split()[1]

    def mark(self):
        """The current end of the request log (pass to `bytes_out_since`)."""
        return os.path.getsize(self.log_path)

    def bytes_out_since(self, mark, agent_filter):
        """Bytes the server sent (response bodies) since `mark` to clients whose User-Agent
        satisfies `agent_filter`; fetches (upload-pack) and ref advertisements included."""
        total = 0
        with open(self.log_path) as f:
            f.seek(mark)
            for line in f:
                m = re.search(r"\bUA=(.*?) TE=.* (\d+)B in, (\d+)B out$", line.rstrip("\n"))
                if m and agent_filter(m.group(1)):
                    total += int(m.group(3))
        return total

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait()


class Terraform:
    """A workspace directory and the CLI configuration its commands use."""

    def __init__(self, directory, cli_config, config):
        self.dir = directory
        self.cli_config = cli_config
        os.makedirs(directory, exist_ok=True)
        self.write(config)

    def write(self, config):
        with open(os.path.join(self.dir, "main.tf"), "w") as f:
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

    def apply(self, *extra, env=None, cli_config=None):
        return self.run("apply", "-auto-approve", *extra, env=env, cli_config=cli_config)

    def destroy(self, env=None, cli_config=None):
        return self.run("destroy", "-auto-approve", env=env, cli_config=cli_config)

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
    """A plugin executable that runs `real` under `/usr/bin/time`, each process writing its
    elapsed, user and system seconds and peak RSS (KiB) to `$BENCH_RSS_DIR/<pid>.rss`. `time`
    writes to that file, never to stdout, so the plugin's stdout stays the handshake line."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(
            "#!/bin/sh\n"
            f'exec /usr/bin/time -f "%e %U %S %M" -o "$BENCH_RSS_DIR/$$.rss" "{real}" "$@"\n'
        )
    os.chmod(path, 0o755)


class ProcessAccounting:
    """Reads what the wrapped plugin processes of one command wrote (see `wrap_plugin`)."""

    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)

    def reset(self):
        for f in os.listdir(self.dir):
            os.remove(os.path.join(self.dir, f))

    def env(self):
        return {"BENCH_RSS_DIR": self.dir}

    def read(self):
        """(summed CPU seconds, largest peak RSS in KiB, process count) of the processes."""
        cpu, peak, count = 0.0, 0, 0
        for name in os.listdir(self.dir):
            fields = open(os.path.join(self.dir, name)).read().split()
            if len(fields) < 4:
                continue
            _, user, system, rss = fields[-4:]
            cpu += float(user) + float(system)
            peak = max(peak, int(rss))
            count += 1
        if count == 0:
            raise SystemExit(f"the accounting wrapper recorded nothing in {self.dir}")
        return cpu, peak, count


# ---------------------------------------------------------------------------------------------
# Git repositories and logs
# ---------------------------------------------------------------------------------------------


def git(cwd, *args, stdin=None):
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
    subprocess.run(["git", *args], cwd=cwd, env=env, input=stdin, check=True,
                   stdout=subprocess.DEVNULL)


def make_repo(path, commits, files):
    """A bare repository whose `main` has `commits` commits over `files` files (none: an empty
    repository) in directories of 100 (`data/NNN/file-NNNNN.txt`, like a monorepo's tree): the
    first commit adds every file, each later one changes one file. One `git fast-import` run,
    streamed."""
    git(os.path.dirname(path), "init", "-q", "--bare", "-b", "main", path)
    if commits == 0:
        return
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null")
    proc = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=path, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    out = proc.stdin
    for i in range(commits):
        msg = f"commit {i}\n".encode()
        chunk = bytearray()
        chunk += (f"commit refs/heads/main\nmark :{i + 1}\n"
                  f"author Someone <someone@example.com> {1700000000 + i} +0000\n"
                  f"committer Someone <someone@example.com> {1700000000 + i} +0000\n"
                  f"data {len(msg)}\n").encode() + msg
        for j in (range(files) if i == 0 else [i % files]):
            content = f"file {j}, version {i}\n".encode()
            chunk += (f"M 100644 inline data/{j // 100:03}/file-{j:05}.txt\n"
                      f"data {len(content)}\n").encode()
            chunk += content + b"\n"
        out.write(chunk)
    out.close()
    if proc.wait() != 0:
        raise SystemExit(f"git fast-import failed for {path}")


def cached_repo(commits, files):
    """The template repository for (commits, files), generated once into the cache outside the
    clone and reused by later runs."""
    path = os.path.join(cache_dir("repos"), f"c{commits}-f{files}.git")
    done = path + ".done"
    if not os.path.exists(done):
        if os.path.exists(path):
            subprocess.run(["rm", "-rf", path], check=True)
        log(f"generating a repository with {commits} commits over {files} files (cached)")
        started = time.time()
        make_repo(path, commits, files)
        if commits:
            git(path, "gc", "-q", "--aggressive" if commits < 1000 else "--auto")
        open(done, "w").close()
        log(f"generated in {time.time() - started:.0f} s")
    return path


def parse_time(text):
    text = text.rstrip("Z")
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.timezone.utc)


def load_average():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"
