//! Compiles the protocol definitions in `proto/` (tfplugin6 and go-plugin's controller, stdio and
//! broker services) into Rust with `protox` (pure Rust, no system `protoc`) and
//! `tonic-prost-build`. The generated code is included by `src/protocol/mod.rs` only.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/tfplugin6.proto",
        "proto/grpc_controller.proto",
        "proto/grpc_stdio.proto",
        "proto/grpc_broker.proto",
    ];
    for file in files {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
