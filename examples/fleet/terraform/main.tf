# A fleet with Terraform: one `flux` provider block per cluster (Terraform cannot repeat a
# provider configuration with for_each), and the cluster module instantiated once per cluster
# with its provider. Add a cluster by adding a provider block and a module block.
#
#   terraform init && terraform apply -var-file=clusters.tfvars

terraform {
  required_version = ">= 1.11"

  required_providers {
    flux = {
      source = "fluxrs/flux"
    }
  }
}

variable "clusters" {
  description = "API server URL, token and CA certificate of each cluster (from the module or data source that creates the clusters)."
  type = map(object({
    host                   = string
    token                  = string
    cluster_ca_certificate = string
  }))
  sensitive = true
}

provider "flux" {
  alias = "eu_west"
  kubernetes = {
    host                   = var.clusters["eu-west"].host
    token                  = var.clusters["eu-west"].token
    cluster_ca_certificate = var.clusters["eu-west"].cluster_ca_certificate
  }
}

provider "flux" {
  alias = "us_east"
  kubernetes = {
    host                   = var.clusters["us-east"].host
    token                  = var.clusters["us-east"].token
    cluster_ca_certificate = var.clusters["us-east"].cluster_ca_certificate
  }
}

provider "flux" {
  alias = "ap_south"
  kubernetes = {
    host                   = var.clusters["ap-south"].host
    token                  = var.clusters["ap-south"].token
    cluster_ca_certificate = var.clusters["ap-south"].cluster_ca_certificate
  }
}

module "eu_west" {
  source    = "../modules/cluster"
  providers = { flux = flux.eu_west }
  name      = "eu-west"
  size      = "large"
}

module "us_east" {
  source    = "../modules/cluster"
  providers = { flux = flux.us_east }
  name      = "us-east"
  size      = "medium"
}

module "ap_south" {
  source    = "../modules/cluster"
  providers = { flux = flux.ap_south }
  name      = "ap-south"
}

output "flux_versions" {
  description = "The Flux version each cluster runs."
  value = {
    eu-west  = module.eu_west.flux_version
    us-east  = module.us_east.flux_version
    ap-south = module.ap_south.flux_version
  }
}
