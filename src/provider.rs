//! The provider: its configuration schema, Configure (which never connects), and the list of
//! resources and data sources.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;

use crate::framework::diagnostics::Diagnostics;
use crate::framework::schema::{Block, Schema};
use crate::framework::service::{
    ApplyRequest, ApplyResponse, ConfigureRequest, ImportRequest, ImportResponse, PlanRequest,
    PlanResponse, ProviderSchemas, ProviderService, ReadDataRequest, ReadDataResponse, ReadRequest,
    ReadResponse, ServerCapabilities, UpgradeStateRequest, UpgradeStateResponse, ValidateRequest,
};
use crate::framework::value::RawValue;

/// The provider as a [`ProviderService`], ready to be served by the protocol layer.
pub fn service() -> Arc<dyn ProviderService> {
    Arc::new(Placeholder)
}

/// Placeholder until the framework dispatcher lands: an empty provider schema, no resources.
struct Placeholder;

static SCHEMAS: LazyLock<ProviderSchemas> = LazyLock::new(|| ProviderSchemas {
    provider: Schema {
        version: 0,
        block: Block::default(),
    },
    resources: BTreeMap::new(),
    data_sources: BTreeMap::new(),
    capabilities: ServerCapabilities {
        plan_destroy: true,
        ..ServerCapabilities::default()
    },
});

fn unknown_type(type_name: &str) -> Diagnostics {
    Diagnostics::from_error(
        "Unknown Type",
        format!("This provider has no type named {type_name:?}. This is a provider bug."),
    )
}

#[async_trait]
impl ProviderService for Placeholder {
    fn schemas(&self) -> &ProviderSchemas {
        &SCHEMAS
    }
    async fn validate_provider_config(&self, _config: RawValue) -> Diagnostics {
        Diagnostics::new()
    }
    async fn configure_provider(&self, _request: ConfigureRequest) -> Diagnostics {
        Diagnostics::new()
    }
    async fn validate_resource_config(&self, request: ValidateRequest) -> Diagnostics {
        unknown_type(&request.type_name)
    }
    async fn validate_data_source_config(&self, request: ValidateRequest) -> Diagnostics {
        unknown_type(&request.type_name)
    }
    async fn upgrade_resource_state(&self, request: UpgradeStateRequest) -> UpgradeStateResponse {
        UpgradeStateResponse {
            diagnostics: unknown_type(&request.type_name),
            ..Default::default()
        }
    }
    async fn read_resource(&self, request: ReadRequest) -> ReadResponse {
        ReadResponse {
            diagnostics: unknown_type(&request.type_name),
            ..Default::default()
        }
    }
    async fn plan_resource_change(&self, request: PlanRequest) -> PlanResponse {
        PlanResponse {
            diagnostics: unknown_type(&request.type_name),
            ..Default::default()
        }
    }
    async fn apply_resource_change(&self, request: ApplyRequest) -> ApplyResponse {
        ApplyResponse {
            diagnostics: unknown_type(&request.type_name),
            ..Default::default()
        }
    }
    async fn import_resource_state(&self, request: ImportRequest) -> ImportResponse {
        ImportResponse {
            diagnostics: unknown_type(&request.type_name),
            ..Default::default()
        }
    }
    async fn read_data_source(&self, request: ReadDataRequest) -> ReadDataResponse {
        ReadDataResponse {
            diagnostics: unknown_type(&request.type_name),
            ..Default::default()
        }
    }
    fn stop(&self) {}
}
