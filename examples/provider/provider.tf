terraform {
  required_providers {
    flux = {
      source = "fluxrs/flux"
    }
  }
}

variable "kubeconfig_path" {
  description = "Path to the kubeconfig of the cluster Flux is installed in."
  type        = string
  default     = "~/.kube/config"
}

variable "git_token" {
  description = "Personal access token with write access to the fleet repository."
  type        = string
  sensitive   = true
}

# The provider never connects while it is configured: connection problems are reported by the
# first operation that needs the cluster or the repository, naming the setting to fix.
provider "flux" {
  kubernetes = {
    config_path    = var.kubeconfig_path
    config_context = "production"
  }

  git = {
    http = {
      username = "git"
      password = var.git_token
    }
    author_name  = "Flux"
    author_email = "flux@example.com"
  }
}
