# Install the Flux Operator from its v0.58.1 release manifests (downloaded from GitHub at apply).
resource "flux_operator" "this" {
  version   = "v0.58.1"
  namespace = "flux-system"

  # Settings usually changed through the operator's Helm values.
  env = {
    REPORTING_INTERVAL = "30s"
  }
  resources = {
    requests = { cpu = "100m", memory = "64Mi" }
    limits   = { cpu = "2", memory = "1Gi" }
  }
  node_selector = {
    "kubernetes.io/os" = "linux"
  }
  tolerations = [
    { key = "CriticalAddonsOnly", operator = "Exists" },
  ]

  timeouts {
    create = "5m"
  }
}

# Air-gapped clusters: the same install from a local copy of the release's install.yaml, with
# the image pulled from a mirror.
resource "flux_operator" "air_gapped" {
  manifests        = file("${path.module}/flux-operator-install.yaml")
  image_repository = "registry.internal.example/controlplaneio-fluxcd/flux-operator"
}
