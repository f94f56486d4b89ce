# Bootstrap Flux from a GitHub repository as a GitHub App: the provider mints a short-lived
# installation token from the app's private key for its own clone and push, and Flux gets the
# app's credentials in the sync Secret, so no personal access token is involved anywhere.
terraform {
  required_providers {
    flux = { source = "registry.terraform.io/fluxrs/flux" }
  }
}

variable "github_app_id" {
  type = string
}

variable "github_app_installation_id" {
  type = string
}

# The PEM key generated on the app's settings page. Provider configuration never enters state.
variable "github_app_private_key" {
  type      = string
  sensitive = true
}

provider "flux" {
  kubernetes = { config_path = "~/.kube/config" }
  git = {
    github_app = {
      app_id          = var.github_app_id
      installation_id = var.github_app_installation_id
      private_key     = var.github_app_private_key
      # GitHub Enterprise Server: base_url = "https://github.example.com/api/v3"
    }
    author_name  = "flux-bot"
    author_email = "flux-bot@users.noreply.github.com"
  }
}

resource "flux_bootstrap_git" "this" {
  url  = "https://github.com/example/fleet.git"
  path = "clusters/production"

  distribution = { version = "2.7.x" }
  operator     = { version = "v0.58.1" }

  # Flux authenticates as the same app: the sync Secret gets githubAppID,
  # githubAppInstallationID and githubAppPrivateKey.
  sync = { provider = "github" }

  reconcile_every = "30m"
}
