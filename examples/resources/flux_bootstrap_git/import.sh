# Import by the namespace Flux runs in, whether it was bootstrapped by this resource or by the
# Flux Operator from a FluxInstance that syncs from a Git branch.
terraform import flux_bootstrap_git.this flux-system
