"""Section `fleet`: one Terraform configuration managing N clusters with the module of
`examples/fleet/modules/cluster` (the Flux Operator and a FluxInstance per cluster), one provider
block and one module block per cluster, against N `kube-sandbox serve --operator-sim` processes.
For N in `--fleet-sizes` (default 10, 20, 40) it times the creating `terraform apply` and then a
no-change `terraform plan`, and reports both per cluster (wall / N). No peer: the rows show how
the per-cluster cost grows with the fleet (Terraform runs 10 operations at once by default).
"""

import os
import shutil
import subprocess

from benchlib import OPERATOR_INSTALL, REPO, Sample, Sandbox, Terraform, fmt, log

REQUIRED = """terraform {
  required_providers {
    flux = { source = "registry.terraform.io/fluxrs/flux" }
  }
}
"""


def fleet_config(clusters):
    """One provider block and one module block per (name, kubeconfig)."""
    blocks = [REQUIRED]
    for name, kubeconfig in clusters:
        blocks.append(f"""
provider "flux" {{
  alias      = "{name}"
  kubernetes = {{ config_path = "{kubeconfig}" }}
}}

module "{name}" {{
  source             = "./modules/cluster"
  providers          = {{ flux = flux.{name} }}
  name               = "{name}"
  operator_manifests = file("{OPERATOR_INSTALL}")
}}
""")
    return "".join(blocks)


def measure(ctx, n):
    """Starts n sandboxes, applies the fleet, plans it; returns (apply s, plan s)."""
    workdir = os.path.join(ctx.root, f"fleet-{n}")
    sandboxes = []
    try:
        for i in range(n):
            sandboxes.append(Sandbox(ctx.args.sandbox, os.path.join(workdir, f"c{i:02}"),
                                     install_operator=False))
        clusters = [(f"c{i:02}", s.kubeconfig) for i, s in enumerate(sandboxes)]
        tf = Terraform(os.path.join(workdir, "tf"), ctx.cli, fleet_config(clusters))
        shutil.copytree(os.path.join(REPO, "examples/fleet/modules/cluster"),
                        os.path.join(tf.dir, "modules/cluster"))
        # `get` installs the local module (it takes no -input flag, unlike Terraform.run's).
        subprocess.run(["terraform", "get", "-no-color"], cwd=tf.dir, check=True,
                       stdout=subprocess.DEVNULL,
                       env=dict(os.environ, TF_CLI_CONFIG_FILE=ctx.cli, CHECKPOINT_DISABLE="1"))
        apply_s, _ = tf.apply()
        plan_s = tf.plan_no_changes()
        return apply_s, plan_s
    finally:
        for s in sandboxes:
            s.stop()


def section_fleet(ctx):
    sizes = [int(s) for s in ctx.args.fleet_sizes.split(",")]
    rows, notes, details = [], [], ["| clusters | apply (wall) | apply per cluster | "
                                    "no-change plan (wall) | plan per cluster |",
                                    "|---|---|---|---|---|"]
    per_cluster = {}
    for n in sizes:
        log(f"fleet of {n} clusters")
        apply_s, plan_s = measure(ctx, n)
        per_cluster[n] = (apply_s / n, plan_s / n)
        details.append(f"| {n} | {fmt(apply_s, 's')} | {fmt(apply_s / n, 's')} | "
                       f"{fmt(plan_s, 's')} | {fmt(plan_s / n, 's')} |")
    for n in sizes:
        apply_c, plan_c = per_cluster[n]
        rows.append((f"Fleet of {n} clusters: apply per cluster (operator + FluxInstance)",
                     fmt(apply_c, "s"), "—", "—", "—", "—"))
        rows.append((f"Fleet of {n} clusters: no-change plan per cluster",
                     fmt(plan_c, "s"), "—", "—", "—", "—"))
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        growth = Sample([per_cluster[large][1] / per_cluster[small][1]])
        notes.append(f"Fleet: the no-change plan per cluster at {large} clusters is "
                     f"{fmt(growth.median, 'x')} that at {small} (1 run per size; one provider "
                     f"process per cluster, Terraform's default parallelism of 10).")
    return rows, notes, "\n".join(details)


SECTIONS = [("fleet", section_fleet)]
