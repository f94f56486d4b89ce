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

  # The chart's replicas, affinity, priority class, pull secrets, flags and web UI switch.
  replicas            = 2
  priority_class_name = "system-cluster-critical"
  image_pull_secrets  = ["ghcr-mirror"]
  log_level           = "debug"
  concurrent          = 20
  web_ui              = false
  affinity = {
    node_affinity = {
      required_during_scheduling_ignored_during_execution = {
        node_selector_terms = [{
          match_expressions = [{ key = "kubernetes.io/os", operator = "In", values = ["linux"] }]
        }]
      }
    }
    pod_anti_affinity = {
      preferred_during_scheduling_ignored_during_execution = [{
        weight = 100
        pod_affinity_term = {
          label_selector = { match_labels = { "app.kubernetes.io/name" = "flux-operator" } }
          topology_key   = "kubernetes.io/hostname"
        }
      }]
    }
  }

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
