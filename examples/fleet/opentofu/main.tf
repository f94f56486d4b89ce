# A fleet with OpenTofu >= 1.9: one `flux` provider block repeated with for_each over the
# clusters, and the cluster module instantiated per cluster with its own provider instance.
# Add a cluster by adding an entry to var.clusters. Remove one in two applies: first set its
# `enabled = false` (its module instance is destroyed while its provider instance still
# exists), then delete its entry — OpenTofu needs the provider to destroy what it created.
#
#   tofu init && tofu apply -var-file=fleet.tfvars
#
# with fleet.tfvars such as:
#
#   clusters = {
#     eu-west = { kubeconfig = "~/.kube/config", context = "eu-west", size = "large" }
#     us-east = { kubeconfig = "~/.kube/config", context = "us-east", size = "medium" }
#   }

terraform {
  required_version = ">= 1.9"

  required_providers {
    flux = {
      source = "fluxrs/flux"
    }
  }
}

variable "clusters" {
  description = "The fleet: cluster name => its kubeconfig file, context, FluxInstance size and whether it is managed."
  type = map(object({
    kubeconfig = string
    context    = optional(string)
    size       = optional(string, "small")
    enabled    = optional(bool, true)
  }))
  # OpenTofu needs the provider instances at every step (validate included): an empty fleet
  # until a tfvars file names the clusters.
  default = {}
}

variable "operator_manifests" {
  description = "The operator's install.yaml as YAML (air-gapped fleets); null downloads the release."
  type        = string
  default     = null
}

provider "flux" {
  alias    = "cluster"
  for_each = var.clusters
  kubernetes = {
    config_path    = each.value.kubeconfig
    config_context = each.value.context
  }
}

module "cluster" {
  source   = "../modules/cluster"
  for_each = { for name, cluster in var.clusters : name => cluster if cluster.enabled }
  providers = {
    flux = flux.cluster[each.key]
  }
  name               = each.key
  size               = each.value.size
  operator_manifests = var.operator_manifests
}

output "flux_versions" {
  description = "The Flux version each cluster runs."
  value       = { for name, cluster in module.cluster : name => cluster.flux_version }
}
