# The Flux Operator is imported by its namespace.
terraform import flux_operator.this flux-system
