# Bootstrap Flux from Git through the Flux Operator: the FluxInstance manifest is committed to
# <path>/flux-system/ in the repository, the operator and the instance are installed in the
# cluster, and Flux then manages itself (and everything else under <path>) from Git.
#
#   export TF_VAR_git_token=...   # a token with write access to the repository
#   terraform init
#   terraform apply -var git_url=https://github.com/<org>/<repo>.git

terraform {
  required_version = ">= 1.11"

  required_providers {
    flux = {
      source = "fluxrs/flux"
    }
  }
}

variable "git_url" {
  description = "HTTPS URL of the fleet repository."
  type        = string
}

variable "git_token" {
  description = "Personal access token with write access to the repository."
  type        = string
  sensitive   = true
}

variable "cluster_path" {
  description = "The cluster's directory in the repository."
  type        = string
  default     = "clusters/production"
}

variable "kubeconfig_path" {
  description = "Path to the kubeconfig of the cluster to bootstrap."
  type        = string
  default     = "~/.kube/config"
}

# Credentials are provider configuration, which never enters the Terraform state.
provider "flux" {
  kubernetes = {
    config_path = var.kubeconfig_path
  }

  git = {
    http = {
      username = "git"
      password = var.git_token
    }
    author_name  = "Terraform"
    author_email = "terraform@example.com"
  }
}

resource "flux_bootstrap_git" "this" {
  url    = var.git_url
  branch = "main"
  path   = var.cluster_path

  distribution = {
    version = "2.7.x"
  }

  components = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
  ]

  # Installed when the operator is not running in the namespace yet.
  operator = {
    version = "v0.58.1"
  }
}

output "commit" {
  description = "The last commit Terraform made to the repository."
  value       = flux_bootstrap_git.this.commit_sha
}

output "flux_version" {
  description = "The Flux version the operator installed."
  value       = flux_bootstrap_git.this.flux_version
}
