# Preview environments: one input set per open pull request labelled `deploy` on a GitHub
# repository, read with a token from the Secret `github-token` (keys `username` and `password`).
resource "flux_resource_set_input_provider" "previews" {
  name      = "app-previews"
  namespace = "flux-system"
  type      = "GitHubPullRequest"
  url       = "https://github.com/example/app"

  secret_ref = { name = "github-token" }

  # Added to every input set that lacks them.
  default_values = {
    env = "preview"
  }

  filter = {
    labels = ["deploy"]
    limit  = 10
  }

  # Only during office hours: outside each window the provider keeps its last input sets.
  schedule = [
    { cron = "0 8 * * mon-fri", time_zone = "Europe/Berlin", window = "10h" },
  ]

  reconcile_every = "5m"
}

# A Static provider: `default_values` is its one input set (with an `id`).
resource "flux_resource_set_input_provider" "cluster" {
  name      = "cluster-info"
  namespace = "flux-system"
  type      = "Static"

  default_values = {
    cluster = "production"
    region  = "eu-west-1"
  }
}

# Naming the providers through their attributes orders the ResourceSet after them: each
# provider's apply waits until the operator exported its input sets, so the ResourceSet renders
# them in the same `terraform apply`. `Permute` builds every (pull request, cluster) pair.
resource "flux_resource_set" "previews" {
  name      = "app-previews"
  namespace = "flux-system"

  inputs_from = [
    { name = flux_resource_set_input_provider.previews.name },
    { name = flux_resource_set_input_provider.cluster.name },
  ]
  input_strategy = { name = "Permute" }

  resources_template = <<-EOT
    apiVersion: v1
    kind: Namespace
    metadata:
      name: app-<< inputs.app_previews.id >>
      labels:
        cluster: << inputs.cluster_info.cluster >>
  EOT
}

output "cluster_inputs" {
  value = flux_resource_set_input_provider.cluster.exported_inputs
}
