# The `make demo` configuration: the Flux Operator, Flux itself, and two tenants created by a
# ResourceSet — with Flux either installed directly (`flux_instance`) or bootstrapped from a Git
# repository (`flux_bootstrap_git`, when `git_url` is set).
#
# `make demo` (scripts/demo.sh) applies it to kube-sandbox, a LOCAL SIMULATION of a cluster with a
# simulated Flux Operator, and to a local Git server. The same file works against a real cluster:
# see "Pointing it at a real cluster" in the README, e.g.
#
#   terraform init
#   terraform apply -var kubeconfig=~/.kube/config -var kubeconfig_context=kind-kind

terraform {
  required_version = ">= 1.11"

  required_providers {
    flux = {
      source = "fluxrs/flux"
    }
  }
}

variable "kubeconfig" {
  description = "Path to the kubeconfig of the cluster to install Flux in. Nothing else is read (no KUBECONFIG, no ~/.kube/config fallback)."
  type        = string
}

variable "kubeconfig_context" {
  description = "Context of the kubeconfig; null means the file's current context."
  type        = string
  default     = null
}

variable "operator_manifests_file" {
  description = "A local copy of the Flux Operator's install.yaml (air-gapped install). Null downloads the release manifests of operator_version from GitHub."
  type        = string
  default     = null
}

variable "operator_version" {
  description = "Flux Operator release to install when operator_manifests_file is null."
  type        = string
  default     = "v0.58.1"
}

variable "flux_version" {
  description = "Flux version constraint for the FluxInstance."
  type        = string
  default     = "2.7.x"
}

variable "git_url" {
  description = "URL of the repository to bootstrap Flux from (flux_bootstrap_git). Null installs Flux without Git (flux_instance)."
  type        = string
  default     = null
}

variable "git_username" {
  description = "Username for the Git repository (HTTP basic auth)."
  type        = string
  default     = "git"
}

variable "git_password" {
  description = "Password or token for the Git repository. It is provider configuration, so it never enters the state; Flux pulls with a copy in the flux-system Secret."
  type        = string
  default     = null
  sensitive   = true
}

variable "git_allow_insecure_http" {
  description = "Allow a plain http:// Git URL (the demo's local Git server). Keep false for real repositories."
  type        = bool
  default     = false
}

variable "cluster_path" {
  description = "The cluster's directory in the Git repository."
  type        = string
  default     = "clusters/demo"
}

variable "tenants" {
  description = "Tenants the ResourceSet creates: a namespace, a service account and a config map each."
  type        = map(object({ team = string }))
  default = {
    team-a = { team = "Team A" }
    team-b = { team = "Team B" }
  }
}

locals {
  bootstrap = var.git_url != null
}

provider "flux" {
  kubernetes = {
    config_path    = var.kubeconfig
    config_context = var.kubeconfig_context
  }

  git = {
    http = {
      username            = var.git_username
      password            = var.git_password
      allow_insecure_http = var.git_allow_insecure_http
    }
    author_name  = "Terraform demo"
    author_email = "terraform@example.com"
  }
}

# The Flux Operator: namespace, CRDs, RBAC, ServiceAccount, Service and Deployment.
resource "flux_operator" "this" {
  namespace = "flux-system"
  version   = var.operator_manifests_file == null ? var.operator_version : null
  manifests = var.operator_manifests_file == null ? null : file(var.operator_manifests_file)
}

# Without Git: the FluxInstance `flux`, from which the operator installs and runs Flux.
resource "flux_instance" "this" {
  count = local.bootstrap ? 0 : 1

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
}

# With Git: the same FluxInstance committed to <cluster_path>/flux-system/ in the repository,
# applied to the cluster with its sync pointing back at the repository, so Flux manages itself
# from Git. The sync Secret is written from the provider's git credentials.
resource "flux_bootstrap_git" "this" {
  count = local.bootstrap ? 1 : 0

  namespace = flux_operator.this.namespace
  url       = var.git_url
  branch    = "main"
  path      = var.cluster_path

  distribution = {
    version = var.flux_version
  }

  components = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "notification-controller",
  ]
}

# One set of objects per tenant, rendered and kept in place by the operator (`<< >>` are the
# operator's template delimiters, untouched by Terraform).
resource "flux_resource_set" "tenants" {
  depends_on = [flux_instance.this, flux_bootstrap_git.this]

  name      = "tenants"
  namespace = flux_operator.this.namespace

  inputs = [
    for name, tenant in var.tenants : {
      tenant = name
      team   = tenant.team
    }
  ]

  resources = [
    {
      apiVersion = "v1"
      kind       = "Namespace"
      metadata = {
        name   = "<< inputs.tenant >>"
        labels = { "toolkit.fluxcd.io/tenant" = "<< inputs.tenant >>" }
      }
    },
    {
      apiVersion = "v1"
      kind       = "ServiceAccount"
      metadata   = { name = "flux", namespace = "<< inputs.tenant >>" }
    },
    {
      apiVersion = "v1"
      kind       = "ConfigMap"
      metadata   = { name = "tenant-info", namespace = "<< inputs.tenant >>" }
      data       = { team = "<< inputs.team >>" }
    },
  ]

  common_metadata = {
    labels = { "app.kubernetes.io/managed-by" = "terraform" }
  }
}

# The installation as the cluster reports it, however it was installed.
data "flux_instance" "this" {
  depends_on = [flux_instance.this, flux_bootstrap_git.this]

  namespace = flux_operator.this.namespace
}

output "operator_version" {
  description = "The Flux Operator version installed."
  value       = flux_operator.this.operator_version
}

output "flux" {
  description = "The Flux installation: version the operator resolved, readiness, components."
  value = {
    version    = data.flux_instance.this.flux_version
    ready      = data.flux_instance.this.ready
    components = data.flux_instance.this.components
    status     = data.flux_instance.this.installation_status
  }
}

output "git_commit" {
  description = "The commit flux_bootstrap_git made to the repository (null without Git)."
  value       = local.bootstrap ? flux_bootstrap_git.this[0].commit_sha : null
}

output "tenants" {
  description = "The tenants the ResourceSet manages."
  value       = sort(keys(var.tenants))
}
