# One cluster of the fleet: the Flux Operator and the FluxInstance it reconciles. The caller
# passes the `flux` provider configured for this cluster (Terraform: one provider block per
# cluster; OpenTofu >= 1.9: one provider block with for_each).

terraform {
  required_providers {
    flux = {
      source = "fluxrs/flux"
    }
  }
}

variable "name" {
  description = "Name of the cluster, reported in its FluxInstance (`cluster.domain` stays the default)."
  type        = string
}

variable "operator_version" {
  description = "Flux Operator release to install; ignored when operator_manifests is set."
  type        = string
  default     = "v0.58.1"
}

variable "operator_manifests" {
  description = "The operator's install.yaml as YAML (air-gapped fleets); null downloads operator_version."
  type        = string
  default     = null
}

variable "flux_version" {
  description = "Flux version constraint of the FluxInstance."
  type        = string
  default     = "2.7.x"
}

variable "size" {
  description = "`cluster.size` of the FluxInstance: small, medium or large."
  type        = string
  default     = "small"
}

resource "flux_operator" "this" {
  version   = var.operator_manifests == null ? var.operator_version : null
  manifests = var.operator_manifests
  namespace = "flux-system"
  env = {
    REPORTING_INTERVAL = "30s"
  }
}

resource "flux_instance" "flux" {
  namespace = flux_operator.this.namespace

  distribution = {
    version = var.flux_version
  }

  cluster = {
    type = "kubernetes"
    size = var.size
  }

  common_metadata = {
    labels = {
      "fleet.example.com/cluster" = var.name
    }
  }
}

output "flux_version" {
  description = "The Flux version the operator installed in this cluster."
  value       = flux_instance.flux.flux_version
}

output "ready" {
  description = "Whether this cluster's FluxInstance is Ready."
  value       = flux_instance.flux.ready
}
