# One tenant per input: a namespace, a service account Flux impersonates, a role binding, and a
# GitRepository + Kustomization syncing the tenant's repository. The operator renders the
# templates (`<< >>` delimiters, untouched by Terraform) once per input and prunes the objects of
# a tenant removed from `inputs`.
locals {
  tenants = {
    team-a = { repository = "https://github.com/example/team-a.git", branch = "main" }
    team-b = { repository = "https://github.com/example/team-b.git", branch = "release" }
  }
}

# In a full configuration, add `depends_on = [flux_instance.this]` so the operator and Flux exist
# before the ResourceSet is applied.
resource "flux_resource_set" "tenants" {
  name      = "tenants"
  namespace = "flux-system"

  inputs = [
    for name, tenant in local.tenants : {
      tenant     = name
      repository = tenant.repository
      branch     = tenant.branch
    }
  ]

  # Objects as HCL values (objects of different shapes may be mixed, or use yamldecode).
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
      apiVersion = "rbac.authorization.k8s.io/v1"
      kind       = "RoleBinding"
      metadata   = { name = "flux", namespace = "<< inputs.tenant >>" }
      roleRef = {
        apiGroup = "rbac.authorization.k8s.io"
        kind     = "ClusterRole"
        name     = "admin"
      }
      subjects = [{ kind = "ServiceAccount", name = "flux", namespace = "<< inputs.tenant >>" }]
    },
  ]

  # Objects as a multi-document YAML template. Reformatting it is not a change.
  resources_template = <<-EOT
    apiVersion: source.toolkit.fluxcd.io/v1
    kind: GitRepository
    metadata:
      name: << inputs.tenant >>
      namespace: << inputs.tenant >>
    spec:
      interval: 5m
      url: << inputs.repository >>
      ref:
        branch: << inputs.branch >>
    ---
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata:
      name: << inputs.tenant >>
      namespace: << inputs.tenant >>
    spec:
      interval: 10m
      serviceAccountName: flux
      sourceRef:
        kind: GitRepository
        name: << inputs.tenant >>
      path: ./
      prune: true
  EOT

  # Wait for the Flux CRDs before the operator applies GitRepositories and Kustomizations.
  dependencies = [
    {
      api_version = "apiextensions.k8s.io/v1"
      kind        = "CustomResourceDefinition"
      name        = "kustomizations.kustomize.toolkit.fluxcd.io"
      ready       = true
    },
  ]

  common_metadata = {
    labels = { "app.kubernetes.io/managed-by" = "terraform" }
  }

  wait            = true
  reconcile_every = "30m"

  # `uninstall` (default) deletes every generated object on destroy; `orphan` keeps them.
  deletion_policy = "uninstall"

  timeouts {
    create = "10m"
  }
}
