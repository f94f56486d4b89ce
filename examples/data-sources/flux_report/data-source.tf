# Read the Flux Operator's report of the cluster's Flux installation.
data "flux_report" "this" {
  namespace = "flux-system"
}

output "flux_report" {
  value = {
    flux_version = data.flux_report.this.distribution.version
    managed_by   = data.flux_report.this.distribution.managed_by
    # Controller name => image, e.g. { "source-controller" = "ghcr.io/fluxcd/source-controller:v1.7.4" }
    images = { for c in coalesce(data.flux_report.this.components, []) : c.name => c.image }
    # Kinds with failing objects, e.g. ["HelmRelease"].
    failing = [for r in coalesce(data.flux_report.this.reconcilers, []) : r.kind if r.stats.failing > 0]
    sync    = data.flux_report.this.sync
  }
}
