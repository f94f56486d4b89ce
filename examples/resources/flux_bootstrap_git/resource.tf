# Flux bootstrapped from Git through the Flux Operator. The Git credentials live in the
# provider's `git` block (never in state); the FluxInstance manifest is committed under
# clusters/production/flux-system/ and Flux manages itself from there.
provider "flux" {
  kubernetes = {
    config_path = "~/.kube/config"
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

variable "git_token" {
  type      = string
  sensitive = true
}

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
  cluster = {
    size = "medium"
  }

  # Installs the Flux Operator when it is not running in the namespace yet.
  operator = {
    version = "v0.58.1"
  }

  timeouts {
    create = "15m"
  }
}
