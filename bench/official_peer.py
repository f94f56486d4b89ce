"""The bootstrap scenario, meant side by side with the official Go provider
(`github.com/fluxcd/terraform-provider-flux`): `flux_bootstrap_git` create into a repository, a
no-change plan, an update (Flux minor version bump 2.6 → 2.7) and destroy, on an empty
repository, a one-commit repository and a repository with 100,000 commits over 5,000 files,
against a fresh sandbox and the bench's Git server each time. Per step: wall time, the provider
processes' CPU time and peak RSS, bytes the Git server sent to the provider, and the provider's
requests to the API server.

The official provider is measured only when `run.sh` could build it (`--official`); otherwise
its rows say why not (`--official-status`, the Go module proxy's exact answer).
"""

import os
import shutil

from benchlib import (OPERATOR_INSTALL, GitServer, ProcessAccounting, Sample, Sandbox, Terraform,
                      cached_repo, log, ratio_sample, verdict)

STEPS = ("create", "plan", "update", "destroy")
REPOS = (
    ("empty", 0, 0, "empty repository"),
    ("one", 1, 1, "1 commit, 1 file"),
    ("large", 100_000, 5_000, "100,000 commits, 5,000 files"),
)
CREATE_VERSION, UPDATE_VERSION = "2.6.x", "2.7.x"


def ours_config(kubeconfig, url, version):
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
    version = "{version}"
  }}
  operator = {{
    manifests = file("{OPERATOR_INSTALL}")
  }}
  timeouts {{
    create = "300s"
    update = "300s"
    delete = "300s"
  }}
}}
"""


def is_libgit2(agent):
    """Our provider's Git client (libgit2 announces itself as `git/2.0 (libgit2 …)`)."""
    return "libgit2" in agent


def run_ours(ctx, git_server, served, case, template, i):
    """One scenario with our provider; returns {step: (wall, cpu, peak KiB, git bytes, requests)}."""
    repo = f"{case}-{i}.git"
    shutil.copytree(template, os.path.join(served, repo))
    sandbox = Sandbox(ctx.args.sandbox, os.path.join(ctx.root, f"boot-sb-{case}-{i}"),
                      install_operator=False)
    acct = ProcessAccounting(os.path.join(ctx.root, f"boot-acct-{case}-{i}"))
    url = f"{git_server.base}/{repo}"
    ws = Terraform(os.path.join(ctx.root, f"boot-{case}-{i}"), ctx.cli_rss,
                   ours_config(sandbox.kubeconfig, url, CREATE_VERSION))
    out = {}
    try:
        for step in STEPS:
            if step == "update":
                ws.write(ours_config(sandbox.kubeconfig, url, UPDATE_VERSION))
            acct.reset()
            sandbox.clear_requests()
            mark = git_server.mark()
            env = acct.env()
            if step == "plan":
                wall = ws.plan_no_changes(env=env)
            elif step == "destroy":
                wall, _ = ws.destroy(env=env)
            else:
                wall, _ = ws.apply(env=env)
            cpu, peak, _ = acct.read()
            out[step] = (wall, cpu, peak, git_server.bytes_out_since(mark, is_libgit2),
                         len(sandbox.our_requests()))
    finally:
        sandbox.stop()
        shutil.rmtree(os.path.join(served, repo), ignore_errors=True)
    return out


def section_bootstrap(ctx):
    runs, warmup = ctx.args.bootstrap_runs, ctx.args.warmup
    served = os.path.join(ctx.root, "git-served")
    os.makedirs(served, exist_ok=True)
    templates = {case: cached_repo(commits, files) for case, commits, files, _ in REPOS}
    git_server = GitServer(served, ctx.root)
    results = {case: [] for case, *_ in REPOS}
    try:
        for i in range(warmup + runs):
            log(f"bootstrap round {i + 1}/{warmup + runs}{' (warm-up)' if i < warmup else ''}")
            for case, *_ in REPOS:
                measured = run_ours(ctx, git_server, served, case, templates[case], i)
                if i >= warmup:
                    results[case].append(measured)
    finally:
        git_server.stop()

    def metric(case, step, index):
        return [r[step][index] for r in results[case]]

    official = ctx.args.official_status or "not built"
    rows = []
    for step, target in (("create", "≤ 0.3×"), ("plan", "≤ 0.2×")):
        what = "create" if step == "create" else "no-change plan"
        rows.append((f"Bootstrap {what} vs the official Go provider (wall, 1-commit repository)",
                     Sample(metric("one", step, 0)).fmt("s"), f"not measured: {official}",
                     "—", target, "not measured"))
    for step in ("create", "plan"):
        what = "create" if step == "create" else "no-change plan"
        large, small = metric("large", step, 0), metric("one", step, 0)
        ratio = ratio_sample(large, small)
        rows.append((f"Bootstrap {what}, ours: 100,000 commits / 5,000 files vs 1 commit (wall)",
                     Sample(large).fmt("s"), Sample(small).fmt("s"), ratio.fmt("x"), "≤ 1.5×",
                     verdict(ratio.median <= 1.5)))

    details = ["| repository | step | wall | provider CPU | provider peak RSS | "
               "bytes fetched from Git | API requests | official provider |",
               "|---|---|---|---|---|---|---|---|"]
    for case, _, _, label in REPOS:
        for step in STEPS:
            details.append(
                f"| {label} | {step} | {Sample(metric(case, step, 0)).fmt('s')} | "
                f"{Sample(metric(case, step, 1)).fmt('s')} | "
                f"{Sample(metric(case, step, 2)).fmt('MiB')} | "
                f"{Sample(metric(case, step, 3)).fmt('bytes')} | "
                f"{Sample(metric(case, step, 4)).fmt('n')} | not measured |")
    notes = [f"Bootstrap scenario: {runs} runs after {warmup} warm-up, medians (min–max); "
             f"Flux {CREATE_VERSION} created, updated to {UPDATE_VERSION}. Official Go provider: "
             f"{official}."]
    return rows, notes, "\n".join(details)


SECTIONS = [("bootstrap", section_bootstrap)]
