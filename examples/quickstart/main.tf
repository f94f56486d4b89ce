# Quickstart: install the Flux Operator and let it install Flux.
#
#   terraform init
#   terraform apply -var kubeconfig_path=~/.kube/config -var kubeconfig_context=kind-flux
#
# A second `terraform plan` reports no changes.

terraform {
  required_version = ">= 1.11"

  required_providers {
    flux = {
      source = "fluxrs/flux"
    }
  }
}

variable "kubeconfig_path" {
  description = "Path to the kubeconfig of the cluster to install Flux in."
  type        = string
  default     = "~/.kube/config"
}

variable "kubeconfig_context" {
  description = "Context of the kubeconfig to use; null means the file's current context."
  type        = string
  default     = null
}

variable "flux_version" {
  description = "Flux version constraint for the FluxInstance."
  type        = string
  default     = "2.7.x"
}

provider "flux" {
  kubernetes = {
    config_path    = var.kubeconfig_path
    config_context = var.kubeconfig_context
  }
}

# The Flux Operator: CRDs, RBAC, Deployment and Service from the operator's release manifests.
resource "flux_operator" "this" {
  version   = "v0.58.1"
  namespace = "flux-system"
}

# The FluxInstance `flux`: the operator installs the Flux controllers it describes and keeps
# them healthy. Referencing the operator's namespace orders it after the operator.
resource "flux_instance" "flux" {
  namespace = flux_operator.this.namespace

  distribution = {
    version = var.flux_version
  }

  components = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
  ]

  cluster = {
    type           = "kubernetes"
    network_policy = true
  }
}

output "flux_version" {
  description = "The Flux version the operator installed."
  value       = flux_instance.flux.flux_version
}

output "ready" {
  description = "Whether the FluxInstance is Ready."
  value       = flux_instance.flux.ready
}
