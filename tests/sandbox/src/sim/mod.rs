//! Flux Operator simulator: a controller that talks to the sandbox through a `kube::Client`,
//! following the operator's documented behaviour. (Placeholder; being written.)
