# Migrate a cluster bootstrapped with the classic `flux bootstrap` CLI to the Flux Operator,
# in place and without downtime. See README.md for the walk-through.

terraform {
  required_version = ">= 1.11"

  required_providers {
    flux = {
      source = "fluxrs/flux"
    }
  }
}

variable "git_token" {
  description = "Token with write access to the fleet repository the cluster was bootstrapped from."
  type        = string
  sensitive   = true
}

variable "kubeconfig_path" {
  description = "Path to the kubeconfig of the cluster to migrate."
  type        = string
  default     = "~/.kube/config"
}

provider "flux" {
  kubernetes = {
    config_path = var.kubeconfig_path
  }

  git = {
    http = {
      username = "git"
      password = var.git_token
    }
  }
}

# Adopt the existing installation: `flux bootstrap` put Flux in flux-system.
import {
  to = flux_bootstrap_git.this
  id = "flux-system"
}

# The same repository, branch, path, components and Flux minor that `flux bootstrap` used.
# (`terraform plan -generate-config-out=generated.tf` writes this block for you from what the
# import finds; copy the values here and delete generated.tf.)
resource "flux_bootstrap_git" "this" {
  url    = "https://github.com/example/fleet.git"
  branch = "main"
  path   = "clusters/production"

  distribution = {
    version = "2.7.x"
  }

  components = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
  ]

  # The migration installs the operator in the same namespace as the existing controllers.
  operator = {
    version = "v0.58.1"
  }
}
