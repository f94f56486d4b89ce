//! The tonic services: tfplugin6 `Provider` over a [`ProviderService`], go-plugin's
//! `GRPCController` (Shutdown), `GRPCStdio` and `GRPCBroker` (both `Unimplemented`, which
//! go-plugin tolerates), and grpc health (`plugin` SERVING); plus [`serve_with_incoming`], which
//! runs them all on a stream of connections until shut down.
//!
//! Each RPC decodes its request (directed by the schema's type), calls the service, and encodes
//! the answer. User errors are diagnostics; a `tonic::Status` only reports a protocol violation
//! (an undecodable value). One `tracing` span per RPC names the RPC and the type; values are
//! never logged (they may hold secrets), only their shapes at trace level.
//!
//! Depends on `framework` (the service boundary), the codec and the generated code only.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::framework::diagnostics::Diagnostics;
use crate::framework::service::{
    ApplyRequest, ConfigureRequest, ImportRequest, PlanRequest, ProviderService, ReadDataRequest,
    ReadRequest, UpgradeStateRequest, ValidateRequest,
};
use crate::framework::value::{RawValue, Type};
use crate::protocol::codec;
use crate::protocol::convert::{
    attr_path_to_proto, client_capabilities, decode_dynamic, diagnostics_to_proto, encode_dynamic,
    schema_to_proto, server_capabilities,
};
use crate::protocol::proto::plugin as gp;
use crate::protocol::proto::tfplugin6 as pb;

/// gRPC message size limit, both directions (terraform-plugin-go's value; tonic's default
/// decode limit of 4 MiB is too small for large schemas and states).
pub const MAX_MESSAGE_SIZE: usize = 256 * 1024 * 1024;

/// How long in-flight calls get to finish once go-plugin's Shutdown has been called (go-plugin
/// kills the process 2 s after calling it).
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// What can stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The gRPC server failed (accepting or serving connections).
    #[error("serving gRPC: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Serves the provider and go-plugin's services on `incoming` until `shutdown` is cancelled
/// (by go-plugin's `GRPCController.Shutdown` or by the caller). In-flight calls get a short grace
/// period; the provider service is told to stop them.
pub async fn serve_with_incoming<I, IO, IE>(
    service: Arc<dyn ProviderService>,
    incoming: I,
    shutdown: CancellationToken,
) -> Result<(), ServerError>
where
    I: Stream<Item = Result<IO, IE>> + Send,
    IO: AsyncRead + AsyncWrite + Connected + Unpin + Send + 'static,
    IE: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let controller = Controller {
        shutdown: shutdown.clone(),
        service: Arc::clone(&service),
    };
    let server = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(gp::grpc_controller_server::GrpcControllerServer::new(
            controller,
        ))
        .add_service(gp::grpc_stdio_server::GrpcStdioServer::new(Stdio))
        .add_service(gp::grpc_broker_server::GrpcBrokerServer::new(Broker))
        .add_service(ProviderServer::new(service).into_service())
        .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned());
    tokio::select! {
        result = server => result.map_err(ServerError::from),
        () = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::debug!("in-flight calls did not finish within the shutdown grace period");
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// go-plugin services

/// `plugin.GRPCController`: Shutdown stops in-flight work and the server.
struct Controller {
    shutdown: CancellationToken,
    service: Arc<dyn ProviderService>,
}

#[tonic::async_trait]
impl gp::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _request: Request<gp::Empty>) -> Result<Response<gp::Empty>, Status> {
        tracing::info!("go-plugin Shutdown called; stopping");
        self.service.stop();
        self.shutdown.cancel();
        Ok(Response::new(gp::Empty {}))
    }
}

/// `plugin.GRPCStdio`: not offered (logs go to stderr, which Terraform reads directly).
struct Stdio;

#[tonic::async_trait]
impl gp::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream =
        Pin<Box<dyn Stream<Item = Result<gp::StdioData, Status>> + Send + 'static>>;

    async fn stream_stdio(
        &self,
        _request: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        Err(Status::unimplemented("this provider does not mirror stdio"))
    }
}

/// `plugin.GRPCBroker`: not used by Terraform providers.
struct Broker;

#[tonic::async_trait]
impl gp::grpc_broker_server::GrpcBroker for Broker {
    type StartStreamStream =
        Pin<Box<dyn Stream<Item = Result<gp::ConnInfo, Status>> + Send + 'static>>;

    async fn start_stream(
        &self,
        _request: Request<tonic::Streaming<gp::ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        Err(Status::unimplemented(
            "this provider does not use the go-plugin broker",
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// tfplugin6.Provider

/// The tfplugin6 `Provider` service over a [`ProviderService`].
pub struct ProviderServer {
    service: Arc<dyn ProviderService>,
    /// Derived from the schemas on first use, so that the handshake does not wait for them.
    types: OnceLock<Types>,
}

/// The value types of every schema.
struct Types {
    provider: Type,
    resources: BTreeMap<String, Type>,
    data_sources: BTreeMap<String, Type>,
}

impl ProviderServer {
    /// Wraps `service`; the value types of every schema are derived once, on first use.
    pub fn new(service: Arc<dyn ProviderService>) -> Self {
        Self {
            service,
            types: OnceLock::new(),
        }
    }

    fn types(&self) -> &Types {
        self.types.get_or_init(|| {
            let schemas = self.service.schemas();
            let types = |schemas: &BTreeMap<String, crate::framework::schema::Schema>| {
                schemas
                    .iter()
                    .map(|(name, schema)| (name.clone(), codec::block_type(&schema.block)))
                    .collect()
            };
            Types {
                provider: codec::block_type(&schemas.provider.block),
                resources: types(&schemas.resources),
                data_sources: types(&schemas.data_sources),
            }
        })
    }

    /// The tonic service, with message size limits raised to [`MAX_MESSAGE_SIZE`].
    pub fn into_service(self) -> pb::provider_server::ProviderServer<Self> {
        pb::provider_server::ProviderServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE)
    }

    fn resource_type(&self, type_name: &str) -> Result<&Type, Diagnostics> {
        self.types()
            .resources
            .get(type_name)
            .ok_or_else(|| unknown_type("managed resource", type_name))
    }

    fn data_source_type(&self, type_name: &str) -> Result<&Type, Diagnostics> {
        self.types()
            .data_sources
            .get(type_name)
            .ok_or_else(|| unknown_type("data source", type_name))
    }
}

fn unknown_type(kind: &str, type_name: &str) -> Diagnostics {
    Diagnostics::from_error(
        format!("Unknown {kind} type"),
        format!(
            "This provider has no {kind} type named {type_name:?}. Check the type name in the \
             configuration, and that the provider version in use supports it."
        ),
    )
}

/// Decodes a request value; failure is a protocol violation.
fn decode(value: Option<&pb::DynamicValue>, ty: &Type, what: &str) -> Result<RawValue, Status> {
    let decoded = decode_dynamic(value, ty)
        .map_err(|error| Status::invalid_argument(format!("decoding {what}: {error}")))?;
    tracing::trace!(value = what, shape = %shape(&decoded), "decoded");
    Ok(decoded)
}

/// Encodes a response value; a value that does not fit the schema is a provider bug, reported
/// as an error diagnostic (the value itself is then left out).
fn encode(
    value: &RawValue,
    ty: &Type,
    what: &str,
    diagnostics: &mut Diagnostics,
) -> Option<pb::DynamicValue> {
    tracing::trace!(value = what, shape = %shape(value), "encoding");
    match encode_dynamic(value, ty) {
        Ok(encoded) => Some(encoded),
        Err(error) => {
            diagnostics.error(
                "Provider Produced an Invalid Value",
                format!(
                    "The provider's {what} does not match its schema: {error}. This is a bug in \
                     the provider; please report it."
                ),
            );
            None
        }
    }
}

/// The shape of a value (kinds, attribute names and element counts; never contents).
fn shape(value: &RawValue) -> String {
    match value {
        RawValue::Null => "null".to_owned(),
        RawValue::Unknown(_) => "unknown".to_owned(),
        RawValue::Bool(_) => "bool".to_owned(),
        RawValue::Number(_) => "number".to_owned(),
        RawValue::String(_) => "string".to_owned(),
        RawValue::List(items) => format!("list[{}]", items.len()),
        RawValue::Set(items) => format!("set[{}]", items.len()),
        RawValue::Tuple(items) => format!("tuple[{}]", items.len()),
        RawValue::Map(entries) => format!("map[{}]", entries.len()),
        RawValue::Object(attrs) => {
            let inner: Vec<String> = attrs
                .iter()
                .map(|(name, value)| match value {
                    RawValue::Object(_) => format!("{name}:object"),
                    other => format!("{name}:{}", shape(other)),
                })
                .collect();
            format!("object{{{}}}", inner.join(","))
        }
    }
}

/// The tracing span of one RPC.
fn rpc_span(rpc: &'static str, type_name: &str) -> tracing::Span {
    if type_name.is_empty() {
        tracing::info_span!("rpc", tf_rpc = rpc)
    } else {
        tracing::info_span!("rpc", tf_rpc = rpc, tf_type = type_name)
    }
}

/// Logs how an RPC ended (counts only: diagnostic texts may quote configuration).
fn log_outcome(diagnostics: &Diagnostics) {
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == crate::framework::diagnostics::Severity::Error)
        .count();
    let warnings = diagnostics.iter().count() - errors;
    tracing::debug!(errors, warnings, "served");
    // The summary and the attribute path only: details may quote configuration values.
    for diagnostic in diagnostics.iter() {
        let attribute = diagnostic
            .path
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        tracing::debug!(
            severity = ?diagnostic.severity,
            summary = %diagnostic.summary,
            attribute = %attribute,
            "diagnostic"
        );
    }
}

macro_rules! rpc {
    ($self:ident, $request:ident, $name:literal, $type_name:expr, $body:ident) => {{
        let request = $request.into_inner();
        let span = rpc_span($name, $type_name(&request));
        async move {
            tracing::debug!("received");
            $self.$body(request).await.map(Response::new)
        }
        .instrument(span)
        .await
    }};
}

/// The resource or data source type a request concerns (empty when none).
trait TypeName {
    fn type_name(&self) -> &str;
}

macro_rules! type_name {
    ($($module:ident),* ; $($untyped:ident),*) => {
        $(impl TypeName for pb::$module::Request {
            fn type_name(&self) -> &str {
                &self.type_name
            }
        })*
        $(impl TypeName for pb::$untyped::Request {
            fn type_name(&self) -> &str {
                ""
            }
        })*
    };
}

type_name!(
    validate_resource_config, validate_data_resource_config, upgrade_resource_state,
    read_resource, plan_resource_change, apply_resource_change, import_resource_state,
    read_data_source;
    get_metadata, get_provider_schema, validate_provider_config, configure_provider
);

#[tonic::async_trait]
impl pb::provider_server::Provider for ProviderServer {
    async fn get_metadata(
        &self,
        request: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        rpc!(
            self,
            request,
            "GetMetadata",
            TypeName::type_name,
            get_metadata_inner
        )
    }

    async fn get_provider_schema(
        &self,
        request: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        rpc!(
            self,
            request,
            "GetProviderSchema",
            TypeName::type_name,
            get_provider_schema_inner
        )
    }

    async fn validate_provider_config(
        &self,
        request: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        rpc!(
            self,
            request,
            "ValidateProviderConfig",
            TypeName::type_name,
            validate_provider_config_inner
        )
    }

    async fn validate_resource_config(
        &self,
        request: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        rpc!(
            self,
            request,
            "ValidateResourceConfig",
            TypeName::type_name,
            validate_resource_config_inner
        )
    }

    async fn validate_data_resource_config(
        &self,
        request: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        rpc!(
            self,
            request,
            "ValidateDataResourceConfig",
            TypeName::type_name,
            validate_data_resource_config_inner
        )
    }

    async fn upgrade_resource_state(
        &self,
        request: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        rpc!(
            self,
            request,
            "UpgradeResourceState",
            TypeName::type_name,
            upgrade_resource_state_inner
        )
    }

    async fn get_resource_identity_schemas(
        &self,
        _request: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Result<Response<pb::get_resource_identity_schemas::Response>, Status> {
        let _span = rpc_span("GetResourceIdentitySchemas", "").entered();
        // No resource has an identity: an empty map.
        Ok(Response::new(
            pb::get_resource_identity_schemas::Response::default(),
        ))
    }

    async fn upgrade_resource_identity(
        &self,
        request: Request<pb::upgrade_resource_identity::Request>,
    ) -> Result<Response<pb::upgrade_resource_identity::Response>, Status> {
        let request = request.into_inner();
        let _span = rpc_span("UpgradeResourceIdentity", &request.type_name).entered();
        let diagnostics = Diagnostics::from_error(
            "Resource Identity Not Supported",
            format!(
                "The resource type {:?} has no identity in this provider, so there is no \
                 identity to upgrade.",
                request.type_name
            ),
        );
        Ok(Response::new(pb::upgrade_resource_identity::Response {
            upgraded_identity: None,
            diagnostics: diagnostics_to_proto(&diagnostics),
        }))
    }

    async fn configure_provider(
        &self,
        request: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        rpc!(
            self,
            request,
            "ConfigureProvider",
            TypeName::type_name,
            configure_provider_inner
        )
    }

    async fn read_resource(
        &self,
        request: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        rpc!(
            self,
            request,
            "ReadResource",
            TypeName::type_name,
            read_resource_inner
        )
    }

    async fn plan_resource_change(
        &self,
        request: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        rpc!(
            self,
            request,
            "PlanResourceChange",
            TypeName::type_name,
            plan_resource_change_inner
        )
    }

    async fn apply_resource_change(
        &self,
        request: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        rpc!(
            self,
            request,
            "ApplyResourceChange",
            TypeName::type_name,
            apply_resource_change_inner
        )
    }

    async fn import_resource_state(
        &self,
        request: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        rpc!(
            self,
            request,
            "ImportResourceState",
            TypeName::type_name,
            import_resource_state_inner
        )
    }

    async fn move_resource_state(
        &self,
        request: Request<pb::move_resource_state::Request>,
    ) -> Result<Response<pb::move_resource_state::Response>, Status> {
        let request = request.into_inner();
        let _span = rpc_span("MoveResourceState", &request.target_type_name).entered();
        let diagnostics = Diagnostics::from_error(
            "Move Resource State Not Supported",
            format!(
                "This provider cannot move {:?} resources from {:?} ({}) to {:?}. Remove the \
                 `moved` block and import the object under its new address instead.",
                request.source_type_name,
                request.source_provider_address,
                request.source_type_name,
                request.target_type_name
            ),
        );
        Ok(Response::new(pb::move_resource_state::Response {
            diagnostics: diagnostics_to_proto(&diagnostics),
            ..Default::default()
        }))
    }

    async fn read_data_source(
        &self,
        request: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        rpc!(
            self,
            request,
            "ReadDataSource",
            TypeName::type_name,
            read_data_source_inner
        )
    }

    async fn validate_ephemeral_resource_config(
        &self,
        request: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Result<Response<pb::validate_ephemeral_resource_config::Response>, Status> {
        let request = request.into_inner();
        let _span = rpc_span("ValidateEphemeralResourceConfig", &request.type_name).entered();
        Ok(Response::new(
            pb::validate_ephemeral_resource_config::Response {
                diagnostics: diagnostics_to_proto(&unknown_type(
                    "ephemeral resource",
                    &request.type_name,
                )),
            },
        ))
    }

    async fn open_ephemeral_resource(
        &self,
        request: Request<pb::open_ephemeral_resource::Request>,
    ) -> Result<Response<pb::open_ephemeral_resource::Response>, Status> {
        let request = request.into_inner();
        let _span = rpc_span("OpenEphemeralResource", &request.type_name).entered();
        Ok(Response::new(pb::open_ephemeral_resource::Response {
            diagnostics: diagnostics_to_proto(&unknown_type(
                "ephemeral resource",
                &request.type_name,
            )),
            ..Default::default()
        }))
    }

    async fn renew_ephemeral_resource(
        &self,
        request: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Result<Response<pb::renew_ephemeral_resource::Response>, Status> {
        let request = request.into_inner();
        let _span = rpc_span("RenewEphemeralResource", &request.type_name).entered();
        Ok(Response::new(pb::renew_ephemeral_resource::Response {
            diagnostics: diagnostics_to_proto(&unknown_type(
                "ephemeral resource",
                &request.type_name,
            )),
            ..Default::default()
        }))
    }

    async fn close_ephemeral_resource(
        &self,
        request: Request<pb::close_ephemeral_resource::Request>,
    ) -> Result<Response<pb::close_ephemeral_resource::Response>, Status> {
        let request = request.into_inner();
        let _span = rpc_span("CloseEphemeralResource", &request.type_name).entered();
        Ok(Response::new(pb::close_ephemeral_resource::Response {
            diagnostics: diagnostics_to_proto(&unknown_type(
                "ephemeral resource",
                &request.type_name,
            )),
        }))
    }

    async fn get_functions(
        &self,
        _request: Request<pb::get_functions::Request>,
    ) -> Result<Response<pb::get_functions::Response>, Status> {
        let _span = rpc_span("GetFunctions", "").entered();
        Ok(Response::new(pb::get_functions::Response::default()))
    }

    async fn call_function(
        &self,
        request: Request<pb::call_function::Request>,
    ) -> Result<Response<pb::call_function::Response>, Status> {
        let request = request.into_inner();
        let _span = rpc_span("CallFunction", &request.name).entered();
        Ok(Response::new(pb::call_function::Response {
            result: None,
            error: Some(pb::FunctionError {
                text: format!("This provider has no function named {:?}.", request.name),
                function_argument: None,
            }),
        }))
    }

    async fn stop_provider(
        &self,
        _request: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        let _span = rpc_span("StopProvider", "").entered();
        tracing::info!("StopProvider: cancelling in-flight operations");
        self.service.stop();
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}

impl ProviderServer {
    async fn get_metadata_inner(
        &self,
        _request: pb::get_metadata::Request,
    ) -> Result<pb::get_metadata::Response, Status> {
        let schemas = self.service.schemas();
        Ok(pb::get_metadata::Response {
            server_capabilities: Some(server_capabilities(&schemas.capabilities)),
            diagnostics: Vec::new(),
            data_sources: schemas
                .data_sources
                .keys()
                .map(|name| pb::get_metadata::DataSourceMetadata {
                    type_name: name.clone(),
                })
                .collect(),
            resources: schemas
                .resources
                .keys()
                .map(|name| pb::get_metadata::ResourceMetadata {
                    type_name: name.clone(),
                })
                .collect(),
            functions: Vec::new(),
            ephemeral_resources: Vec::new(),
        })
    }

    async fn get_provider_schema_inner(
        &self,
        _request: pb::get_provider_schema::Request,
    ) -> Result<pb::get_provider_schema::Response, Status> {
        let schemas = self.service.schemas();
        let convert = |schemas: &BTreeMap<String, crate::framework::schema::Schema>| {
            schemas
                .iter()
                .map(|(name, schema)| (name.clone(), schema_to_proto(schema)))
                .collect()
        };
        Ok(pb::get_provider_schema::Response {
            provider: Some(schema_to_proto(&schemas.provider)),
            resource_schemas: convert(&schemas.resources),
            data_source_schemas: convert(&schemas.data_sources),
            functions: Default::default(),
            ephemeral_resource_schemas: Default::default(),
            diagnostics: Vec::new(),
            provider_meta: None,
            server_capabilities: Some(server_capabilities(&schemas.capabilities)),
        })
    }

    async fn validate_provider_config_inner(
        &self,
        request: pb::validate_provider_config::Request,
    ) -> Result<pb::validate_provider_config::Response, Status> {
        let config = decode(request.config.as_ref(), &self.types().provider, "config")?;
        let diagnostics = self.service.validate_provider_config(config).await;
        log_outcome(&diagnostics);
        Ok(pb::validate_provider_config::Response {
            diagnostics: diagnostics_to_proto(&diagnostics),
        })
    }

    async fn configure_provider_inner(
        &self,
        request: pb::configure_provider::Request,
    ) -> Result<pb::configure_provider::Response, Status> {
        let config = decode(request.config.as_ref(), &self.types().provider, "config")?;
        let diagnostics = self
            .service
            .configure_provider(ConfigureRequest {
                terraform_version: request.terraform_version,
                config,
                client_capabilities: client_capabilities(request.client_capabilities.as_ref()),
            })
            .await;
        log_outcome(&diagnostics);
        Ok(pb::configure_provider::Response {
            diagnostics: diagnostics_to_proto(&diagnostics),
        })
    }

    async fn validate_resource_config_inner(
        &self,
        request: pb::validate_resource_config::Request,
    ) -> Result<pb::validate_resource_config::Response, Status> {
        let diagnostics = match self.resource_type(&request.type_name) {
            Err(diagnostics) => diagnostics,
            Ok(ty) => {
                let config = decode(request.config.as_ref(), ty, "config")?;
                self.service
                    .validate_resource_config(ValidateRequest {
                        type_name: request.type_name,
                        config,
                        client_capabilities: client_capabilities(
                            request.client_capabilities.as_ref(),
                        ),
                    })
                    .await
            }
        };
        log_outcome(&diagnostics);
        Ok(pb::validate_resource_config::Response {
            diagnostics: diagnostics_to_proto(&diagnostics),
        })
    }

    async fn validate_data_resource_config_inner(
        &self,
        request: pb::validate_data_resource_config::Request,
    ) -> Result<pb::validate_data_resource_config::Response, Status> {
        let diagnostics = match self.data_source_type(&request.type_name) {
            Err(diagnostics) => diagnostics,
            Ok(ty) => {
                let config = decode(request.config.as_ref(), ty, "config")?;
                self.service
                    .validate_data_source_config(ValidateRequest {
                        type_name: request.type_name,
                        config,
                        client_capabilities: Default::default(),
                    })
                    .await
            }
        };
        log_outcome(&diagnostics);
        Ok(pb::validate_data_resource_config::Response {
            diagnostics: diagnostics_to_proto(&diagnostics),
        })
    }

    async fn upgrade_resource_state_inner(
        &self,
        request: pb::upgrade_resource_state::Request,
    ) -> Result<pb::upgrade_resource_state::Response, Status> {
        let ty = match self.resource_type(&request.type_name) {
            Ok(ty) => ty,
            Err(diagnostics) => {
                return Ok(pb::upgrade_resource_state::Response {
                    upgraded_state: None,
                    diagnostics: diagnostics_to_proto(&diagnostics),
                });
            }
        };
        let raw_state = request.raw_state.unwrap_or_default();
        if raw_state.json.is_empty() && !raw_state.flatmap.is_empty() {
            let diagnostics = Diagnostics::from_error(
                "Unsupported State Format",
                "The stored state of this resource is in the flatmap format of Terraform 0.11 \
                 and earlier, which this provider never wrote. Remove the resource from state \
                 and import it again.",
            );
            return Ok(pb::upgrade_resource_state::Response {
                upgraded_state: None,
                diagnostics: diagnostics_to_proto(&diagnostics),
            });
        }
        let response = self
            .service
            .upgrade_resource_state(UpgradeStateRequest {
                type_name: request.type_name,
                version: request.version,
                raw_state_json: raw_state.json,
            })
            .await;
        let mut diagnostics = response.diagnostics;
        let upgraded_state = encode(
            &response.upgraded_state,
            ty,
            "upgraded state",
            &mut diagnostics,
        );
        log_outcome(&diagnostics);
        Ok(pb::upgrade_resource_state::Response {
            upgraded_state,
            diagnostics: diagnostics_to_proto(&diagnostics),
        })
    }

    async fn read_resource_inner(
        &self,
        request: pb::read_resource::Request,
    ) -> Result<pb::read_resource::Response, Status> {
        let ty = match self.resource_type(&request.type_name) {
            Ok(ty) => ty,
            Err(diagnostics) => {
                return Ok(pb::read_resource::Response {
                    new_state: request.current_state,
                    private: request.private,
                    diagnostics: diagnostics_to_proto(&diagnostics),
                    ..Default::default()
                });
            }
        };
        let current_state = decode(request.current_state.as_ref(), ty, "current state")?;
        let response = self
            .service
            .read_resource(ReadRequest {
                type_name: request.type_name,
                current_state,
                private: request.private,
                client_capabilities: client_capabilities(request.client_capabilities.as_ref()),
            })
            .await;
        let mut diagnostics = response.diagnostics;
        let new_state = encode(&response.new_state, ty, "new state", &mut diagnostics);
        log_outcome(&diagnostics);
        Ok(pb::read_resource::Response {
            new_state,
            diagnostics: diagnostics_to_proto(&diagnostics),
            private: response.private,
            deferred: None,
            new_identity: None,
        })
    }

    async fn plan_resource_change_inner(
        &self,
        request: pb::plan_resource_change::Request,
    ) -> Result<pb::plan_resource_change::Response, Status> {
        let ty = match self.resource_type(&request.type_name) {
            Ok(ty) => ty,
            Err(diagnostics) => {
                return Ok(pb::plan_resource_change::Response {
                    diagnostics: diagnostics_to_proto(&diagnostics),
                    ..Default::default()
                });
            }
        };
        let prior_state = decode(request.prior_state.as_ref(), ty, "prior state")?;
        let proposed_new_state = decode(
            request.proposed_new_state.as_ref(),
            ty,
            "proposed new state",
        )?;
        let config = decode(request.config.as_ref(), ty, "config")?;
        let response = self
            .service
            .plan_resource_change(PlanRequest {
                type_name: request.type_name,
                prior_state,
                proposed_new_state,
                config,
                prior_private: request.prior_private,
                client_capabilities: client_capabilities(request.client_capabilities.as_ref()),
            })
            .await;
        let mut diagnostics = response.diagnostics;
        let planned_state = encode(
            &response.planned_state,
            ty,
            "planned state",
            &mut diagnostics,
        );
        log_outcome(&diagnostics);
        Ok(pb::plan_resource_change::Response {
            planned_state,
            requires_replace: response
                .requires_replace
                .iter()
                .map(attr_path_to_proto)
                .collect(),
            planned_private: response.planned_private,
            diagnostics: diagnostics_to_proto(&diagnostics),
            legacy_type_system: false,
            deferred: None,
            planned_identity: None,
        })
    }

    async fn apply_resource_change_inner(
        &self,
        request: pb::apply_resource_change::Request,
    ) -> Result<pb::apply_resource_change::Response, Status> {
        let ty = match self.resource_type(&request.type_name) {
            Ok(ty) => ty,
            Err(diagnostics) => {
                return Ok(pb::apply_resource_change::Response {
                    new_state: request.prior_state,
                    diagnostics: diagnostics_to_proto(&diagnostics),
                    ..Default::default()
                });
            }
        };
        let prior_state = decode(request.prior_state.as_ref(), ty, "prior state")?;
        let planned_state = decode(request.planned_state.as_ref(), ty, "planned state")?;
        let config = decode(request.config.as_ref(), ty, "config")?;
        let response = self
            .service
            .apply_resource_change(ApplyRequest {
                type_name: request.type_name,
                prior_state,
                planned_state,
                config,
                planned_private: request.planned_private,
            })
            .await;
        let mut diagnostics = response.diagnostics;
        let new_state = encode(&response.new_state, ty, "new state", &mut diagnostics);
        log_outcome(&diagnostics);
        Ok(pb::apply_resource_change::Response {
            new_state,
            private: response.private,
            diagnostics: diagnostics_to_proto(&diagnostics),
            legacy_type_system: false,
            new_identity: None,
        })
    }

    async fn import_resource_state_inner(
        &self,
        request: pb::import_resource_state::Request,
    ) -> Result<pb::import_resource_state::Response, Status> {
        if let Err(diagnostics) = self.resource_type(&request.type_name) {
            return Ok(pb::import_resource_state::Response {
                diagnostics: diagnostics_to_proto(&diagnostics),
                ..Default::default()
            });
        }
        if request.id.is_empty() && request.identity.is_some() {
            let diagnostics = Diagnostics::from_error(
                "Import By Identity Not Supported",
                format!(
                    "Resources of type {:?} cannot be imported by identity. Use an import ID \
                     (`id = \"...\"` in the import block) instead.",
                    request.type_name
                ),
            );
            return Ok(pb::import_resource_state::Response {
                diagnostics: diagnostics_to_proto(&diagnostics),
                ..Default::default()
            });
        }
        let response = self
            .service
            .import_resource_state(ImportRequest {
                type_name: request.type_name,
                id: request.id,
                client_capabilities: client_capabilities(request.client_capabilities.as_ref()),
            })
            .await;
        let mut diagnostics = response.diagnostics;
        let mut imported_resources = Vec::with_capacity(response.imported.len());
        for imported in response.imported {
            let ty = match self.resource_type(&imported.type_name) {
                Ok(ty) => ty,
                Err(unknown) => {
                    diagnostics.extend(unknown);
                    continue;
                }
            };
            let state = encode(&imported.state, ty, "imported state", &mut diagnostics);
            imported_resources.push(pb::import_resource_state::ImportedResource {
                type_name: imported.type_name,
                state,
                private: imported.private,
                identity: None,
            });
        }
        log_outcome(&diagnostics);
        Ok(pb::import_resource_state::Response {
            imported_resources,
            diagnostics: diagnostics_to_proto(&diagnostics),
            deferred: None,
        })
    }

    async fn read_data_source_inner(
        &self,
        request: pb::read_data_source::Request,
    ) -> Result<pb::read_data_source::Response, Status> {
        let ty = match self.data_source_type(&request.type_name) {
            Ok(ty) => ty,
            Err(diagnostics) => {
                return Ok(pb::read_data_source::Response {
                    diagnostics: diagnostics_to_proto(&diagnostics),
                    ..Default::default()
                });
            }
        };
        let config = decode(request.config.as_ref(), ty, "config")?;
        let response = self
            .service
            .read_data_source(ReadDataRequest {
                type_name: request.type_name,
                config,
                client_capabilities: client_capabilities(request.client_capabilities.as_ref()),
            })
            .await;
        let mut diagnostics = response.diagnostics;
        let state = encode(&response.state, ty, "state", &mut diagnostics);
        log_outcome(&diagnostics);
        Ok(pb::read_data_source::Response {
            state,
            diagnostics: diagnostics_to_proto(&diagnostics),
            deferred: None,
        })
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
