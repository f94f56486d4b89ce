//! kube-sandbox: a Kubernetes-API-compatible test server with a simulated Flux Operator.

pub mod sim;
