# A ResourceSetInputProvider is imported by "<namespace>/<name>".
terraform import flux_resource_set_input_provider.previews flux-system/app-previews
