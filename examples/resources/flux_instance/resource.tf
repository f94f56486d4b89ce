resource "flux_operator" "this" {
  version = "v0.58.1"
}

# The FluxInstance `flux`: Flux 2.7 with the four core controllers, syncing the cluster from a
# Git repository with the credentials in the `flux-system` Secret.
resource "flux_instance" "this" {
  depends_on = [flux_operator.this]

  distribution = {
    version  = "2.7.x"
    registry = "ghcr.io/fluxcd"
  }

  components = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
  ]

  cluster = {
    type        = "kubernetes"
    size        = "medium"
    multitenant = false
  }

  sync = {
    kind        = "GitRepository"
    url         = "https://github.com/example/fleet.git"
    ref         = "refs/heads/main"
    path        = "clusters/production"
    pull_secret = "flux-system"
  }

  kustomize = {
    patches = [
      {
        target = { kind = "Deployment", name = "kustomize-controller" }
        patch  = <<-EOT
          - op: add
            path: /spec/template/spec/containers/0/args/-
            value: --concurrent=10
        EOT
      },
    ]
  }

  # Keep Flux running when this resource is destroyed.
  deletion_policy = "orphan"

  timeouts {
    create = "10m"
    update = "10m"
  }
}

output "flux_version" {
  value = flux_instance.this.flux_version
}
