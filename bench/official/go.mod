// Wrapper module for building the official Go provider (github.com/fluxcd/terraform-provider-flux)
// as the benchmark's peer; see bench/README.md. `bench/run.sh` asks the Go module proxy for the
// provider's newest release from here and records the proxy's answer when it refuses.
module fluxrs.dev/bench/official

go 1.26
