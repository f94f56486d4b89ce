# Read the Flux installation of a cluster, however it was installed.
data "flux_instance" "this" {
  namespace = "flux-system"
}

output "flux" {
  value = {
    version    = data.flux_instance.this.flux_version
    ready      = data.flux_instance.this.ready
    components = data.flux_instance.this.components
  }
}
