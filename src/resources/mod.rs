//! One file per Terraform resource and data source type: the only place where the Flux domain
//! meets cluster and Git I/O, and where leaf errors become diagnostics.
