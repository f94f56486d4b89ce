//! Terraform plugin protocol 6 over gRPC: the go-plugin handshake, the tonic server and the
//! `DynamicValue` codec. The only module that names tonic, prost or generated types; it
//! translates between tfplugin6 and [`crate::framework`] and holds no provider logic.
