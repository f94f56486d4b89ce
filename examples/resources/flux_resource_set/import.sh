# A ResourceSet is imported by "<namespace>/<name>".
terraform import flux_resource_set.tenants flux-system/tenants
