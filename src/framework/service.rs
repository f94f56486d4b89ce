//! The boundary between the protocol layer and the framework: [`ProviderService`] and its
//! request/response types, one pair per Terraform operation, all in framework terms
//! ([`RawValue`], [`Schema`], [`Diagnostics`], [`AttrPath`]).
//!
//! `protocol/` decodes each RPC into one of these requests (using the schemas from
//! [`ProviderService::schemas`] to decode `DynamicValue`s), calls the service, and encodes the
//! response. The framework implements the service by dispatching to the provider, its resources
//! and data sources. Nothing here names tonic, prost or generated types.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::framework::diagnostics::Diagnostics;
use crate::framework::path::AttrPath;
use crate::framework::schema::Schema;
use crate::framework::value::RawValue;

/// Every schema the provider serves, plus the server capabilities.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderSchemas {
    /// The provider configuration schema.
    pub provider: Schema,
    /// Managed resource schemas by type name (`flux_instance`, ...).
    pub resources: BTreeMap<String, Schema>,
    /// Data source schemas by type name.
    pub data_sources: BTreeMap<String, Schema>,
    /// Capabilities announced to Terraform.
    pub capabilities: ServerCapabilities,
}

/// Capabilities the provider announces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerCapabilities {
    /// Terraform should call PlanResourceChange for destroy plans.
    pub plan_destroy: bool,
    /// Terraform may reuse a cached schema instead of calling GetProviderSchema per process.
    pub get_provider_schema_optional: bool,
    /// The provider supports `moved` between resource types.
    pub move_resource_state: bool,
}

/// Capabilities Terraform (or OpenTofu) announces on a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientCapabilities {
    /// The client can handle deferred responses.
    pub deferral_allowed: bool,
    /// The client supports write-only attributes (Terraform/OpenTofu ≥ 1.11).
    pub write_only_attributes_allowed: bool,
}

/// ConfigureProvider.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigureRequest {
    /// The Terraform (or OpenTofu) version string; informational only, never gate on it.
    pub terraform_version: String,
    /// The provider configuration (may contain unknowns).
    pub config: RawValue,
    /// Client capabilities.
    pub client_capabilities: ClientCapabilities,
}

/// ValidateResourceConfig / ValidateDataResourceConfig.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidateRequest {
    /// Resource or data source type name.
    pub type_name: String,
    /// The configuration (may contain unknowns).
    pub config: RawValue,
    /// Client capabilities.
    pub client_capabilities: ClientCapabilities,
}

/// UpgradeResourceState.
#[derive(Clone, Debug, PartialEq)]
pub struct UpgradeStateRequest {
    /// Resource type name.
    pub type_name: String,
    /// The schema version stored in state.
    pub version: i64,
    /// The stored state as JSON in the stored version's shape.
    pub raw_state_json: Vec<u8>,
}

/// Answer to [`UpgradeStateRequest`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpgradeStateResponse {
    /// The state in the current schema's shape, wholly known.
    pub upgraded_state: RawValue,
    /// Diagnostics.
    pub diagnostics: Diagnostics,
}

/// ReadResource.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadRequest {
    /// Resource type name.
    pub type_name: String,
    /// The state as last stored.
    pub current_state: RawValue,
    /// Private state bytes as last stored (empty = none).
    pub private: Vec<u8>,
    /// Client capabilities.
    pub client_capabilities: ClientCapabilities,
}

/// Answer to [`ReadRequest`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadResponse {
    /// The refreshed state; [`RawValue::Null`] means the object is gone.
    pub new_state: RawValue,
    /// Private state bytes to store.
    pub private: Vec<u8>,
    /// Diagnostics.
    pub diagnostics: Diagnostics,
}

/// PlanResourceChange.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanRequest {
    /// Resource type name.
    pub type_name: String,
    /// Prior state; null on create.
    pub prior_state: RawValue,
    /// Terraform's proposal (config merged with prior computed values); null on destroy.
    pub proposed_new_state: RawValue,
    /// The configuration; null on destroy.
    pub config: RawValue,
    /// Private state bytes from the prior state.
    pub prior_private: Vec<u8>,
    /// Client capabilities.
    pub client_capabilities: ClientCapabilities,
}

/// Answer to [`PlanRequest`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanResponse {
    /// The planned new state (null for destroy).
    pub planned_state: RawValue,
    /// Attributes whose change forces replacement.
    pub requires_replace: Vec<AttrPath>,
    /// Private bytes handed to ApplyResourceChange.
    pub planned_private: Vec<u8>,
    /// Diagnostics (warnings show in the plan output).
    pub diagnostics: Diagnostics,
}

/// ApplyResourceChange.
#[derive(Clone, Debug, PartialEq)]
pub struct ApplyRequest {
    /// Resource type name.
    pub type_name: String,
    /// Prior state; null on create.
    pub prior_state: RawValue,
    /// The planned state; null on destroy.
    pub planned_state: RawValue,
    /// The configuration; null on destroy. Write-only values are only here.
    pub config: RawValue,
    /// Private bytes from the plan.
    pub planned_private: Vec<u8>,
}

/// Answer to [`ApplyRequest`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApplyResponse {
    /// The new state, wholly known; null after destroy. On error, whatever partial state exists.
    pub new_state: RawValue,
    /// Private state bytes to store.
    pub private: Vec<u8>,
    /// Diagnostics.
    pub diagnostics: Diagnostics,
}

/// ImportResourceState.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportRequest {
    /// Resource type name.
    pub type_name: String,
    /// The import ID given by the user.
    pub id: String,
    /// Client capabilities.
    pub client_capabilities: ClientCapabilities,
}

/// One imported object.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportedResource {
    /// Resource type name.
    pub type_name: String,
    /// The imported state (Terraform reads it with ReadResource next).
    pub state: RawValue,
    /// Private state bytes.
    pub private: Vec<u8>,
}

/// Answer to [`ImportRequest`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportResponse {
    /// The imported objects (usually one).
    pub imported: Vec<ImportedResource>,
    /// Diagnostics.
    pub diagnostics: Diagnostics,
}

/// ReadDataSource.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadDataRequest {
    /// Data source type name.
    pub type_name: String,
    /// The configuration (wholly known).
    pub config: RawValue,
    /// Client capabilities.
    pub client_capabilities: ClientCapabilities,
}

/// Answer to [`ReadDataRequest`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadDataResponse {
    /// The data source's state.
    pub state: RawValue,
    /// Diagnostics.
    pub diagnostics: Diagnostics,
}

/// What the protocol layer calls. Implemented by the framework's dispatcher over a provider.
///
/// Every method answers with diagnostics rather than failing: user errors are never protocol
/// errors. Methods observe cancellation by [`ProviderService::stop`].
#[async_trait]
pub trait ProviderService: Send + Sync + 'static {
    /// All schemas and server capabilities (cheap; may be called for every RPC).
    fn schemas(&self) -> &ProviderSchemas;
    /// ValidateProviderConfig.
    async fn validate_provider_config(&self, config: RawValue) -> Diagnostics;
    /// ConfigureProvider. Must never contact the cluster or a Git server.
    async fn configure_provider(&self, request: ConfigureRequest) -> Diagnostics;
    /// ValidateResourceConfig.
    async fn validate_resource_config(&self, request: ValidateRequest) -> Diagnostics;
    /// ValidateDataResourceConfig.
    async fn validate_data_source_config(&self, request: ValidateRequest) -> Diagnostics;
    /// UpgradeResourceState.
    async fn upgrade_resource_state(&self, request: UpgradeStateRequest) -> UpgradeStateResponse;
    /// ReadResource.
    async fn read_resource(&self, request: ReadRequest) -> ReadResponse;
    /// PlanResourceChange.
    async fn plan_resource_change(&self, request: PlanRequest) -> PlanResponse;
    /// ApplyResourceChange.
    async fn apply_resource_change(&self, request: ApplyRequest) -> ApplyResponse;
    /// ImportResourceState.
    async fn import_resource_state(&self, request: ImportRequest) -> ImportResponse;
    /// ReadDataSource.
    async fn read_data_source(&self, request: ReadDataRequest) -> ReadDataResponse;
    /// StopProvider: cancel every in-flight operation promptly (they return what they have).
    /// The server keeps serving; later requests run normally.
    fn stop(&self);
}
