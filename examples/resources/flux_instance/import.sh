# A FluxInstance is imported by "<namespace>/flux", whoever installed it.
terraform import flux_instance.this flux-system/flux
