//! The dispatcher: [`Server`] implements [`ProviderService`] over a [`Provider`]. It builds the
//! schemas once, routes requests to resources and data sources by type name, applies the generic
//! plan rules (defaults, computed → unknown on create, destroy, write-only → null in every
//! response), refuses write-only values from clients that cannot handle them, keeps the
//! "configured" state, and implements StopProvider by cancelling the current
//! [`CancellationToken`] and installing a fresh one.
//!
//! Must not depend on tonic, prost, kube, git2, or any other module of this crate.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::from_raw;
use crate::framework::path::AttrPath;
use crate::framework::plan;
use crate::framework::resource::{
    ApplyError, Context, DynDataSource, DynResource, Provider, model_error,
};
use crate::framework::schema::Schema;
use crate::framework::service::{
    ApplyRequest, ApplyResponse, ClientCapabilities, ConfigureRequest, ImportRequest,
    ImportResponse, ImportedResource, PlanRequest, PlanResponse, ProviderSchemas, ProviderService,
    ReadDataRequest, ReadDataResponse, ReadRequest, ReadResponse, ServerCapabilities,
    UpgradeStateRequest, UpgradeStateResponse, ValidateRequest,
};
use crate::framework::value::RawValue;

/// The framework's [`ProviderService`]: a [`Provider`] with its resources and data sources.
pub struct Server<P: Provider> {
    provider: P,
    schemas: ProviderSchemas,
    resources: BTreeMap<String, Box<dyn DynResource<P::Data>>>,
    data_sources: BTreeMap<String, Box<dyn DynDataSource<P::Data>>>,
    data: RwLock<Option<Arc<P::Data>>>,
    cancel: Mutex<CancellationToken>,
}

impl<P: Provider> std::fmt::Debug for Server<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("resources", &self.resources.keys().collect::<Vec<_>>())
            .field(
                "data_sources",
                &self.data_sources.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn unknown_type(kind: &str, type_name: &str) -> Diagnostics {
    Diagnostics::from_error(
        format!("Unknown {kind} Type"),
        format!(
            "This provider has no {} type named {type_name:?}, yet Terraform asked for it. This \
             is a bug in the provider (its schema and its implementation disagree); please \
             report it.",
            kind.to_lowercase()
        ),
    )
}

fn write_only_not_allowed(path: &AttrPath) -> Diagnostics {
    Diagnostics::from_error_at(
        path.clone(),
        "Write-Only Attribute Not Allowed",
        format!(
            "The attribute {path} is write-only and has a value, but this Terraform or OpenTofu \
             version does not support write-only attributes. Write-only attributes need \
             Terraform 1.11 or OpenTofu 1.11 or later: upgrade, or remove the value."
        ),
    )
}

fn unknown_after(operation: &str, type_name: &str) -> Diagnostics {
    Diagnostics::from_error(
        "Provider Bug: Unknown Value In State",
        format!(
            "The {operation} of {type_name} returned a state that still contains unknown values. \
             This is a bug in the provider; please report it."
        ),
    )
}

/// Shapes a resource's output after its schema and nulls write-only attributes.
fn finish(schema: &Schema, value: RawValue) -> RawValue {
    plan::null_write_only(schema, value.conform(&schema.type_of()))
}

impl<P: Provider> Server<P> {
    /// A server over `provider`: builds every schema once (capabilities: `plan_destroy`).
    pub fn new(provider: P) -> Self {
        let resources: BTreeMap<_, _> = provider
            .resources()
            .into_iter()
            .map(|r| (r.type_name().to_string(), r))
            .collect();
        let data_sources: BTreeMap<_, _> = provider
            .data_sources()
            .into_iter()
            .map(|d| (d.type_name().to_string(), d))
            .collect();
        let schemas = ProviderSchemas {
            provider: provider.schema(),
            resources: resources
                .iter()
                .map(|(name, r)| (name.clone(), r.schema()))
                .collect(),
            data_sources: data_sources
                .iter()
                .map(|(name, d)| (name.clone(), d.schema()))
                .collect(),
            capabilities: ServerCapabilities {
                plan_destroy: true,
                ..ServerCapabilities::default()
            },
        };
        Self {
            provider,
            schemas,
            resources,
            data_sources,
            data: RwLock::new(None),
            cancel: Mutex::new(CancellationToken::new()),
        }
    }

    /// The provider this server dispatches to.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The provider data, once ConfigureProvider succeeded.
    pub fn provider_data(&self) -> Option<Arc<P::Data>> {
        self.data
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn token(&self) -> CancellationToken {
        self.cancel
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn context(&self, capabilities: ClientCapabilities) -> Context<P::Data> {
        Context::new(self.token(), self.provider_data(), capabilities)
    }

    /// A context for operations that need the provider configured.
    fn configured_context(
        &self,
        capabilities: ClientCapabilities,
    ) -> Result<Context<P::Data>, Diagnostics> {
        let ctx = self.context(capabilities);
        ctx.data()?;
        Ok(ctx)
    }

    fn resource(
        &self,
        type_name: &str,
    ) -> Result<(&dyn DynResource<P::Data>, &Schema), Diagnostics> {
        match (
            self.resources.get(type_name),
            self.schemas.resources.get(type_name),
        ) {
            (Some(resource), Some(schema)) => Ok((resource.as_ref(), schema)),
            _ => Err(unknown_type("Resource", type_name)),
        }
    }

    fn data_source(
        &self,
        type_name: &str,
    ) -> Result<(&dyn DynDataSource<P::Data>, &Schema), Diagnostics> {
        match (
            self.data_sources.get(type_name),
            self.schemas.data_sources.get(type_name),
        ) {
            (Some(source), Some(schema)) => Ok((source.as_ref(), schema)),
            _ => Err(unknown_type("Data Source", type_name)),
        }
    }

    fn provider_config(&self, config: RawValue) -> Result<P::Config, Diagnostics> {
        let config = config.conform(&self.schemas.provider.type_of());
        from_raw(&config).map_err(|e| model_error("provider configuration", &e))
    }

    async fn plan_inner(
        &self,
        request: PlanRequest,
        ctx: &mut Context<P::Data>,
    ) -> Result<PlanResponse, Diagnostics> {
        let (resource, schema) = self.resource(&request.type_name)?;
        let ty = schema.type_of();
        let prior = request.prior_state.conform(&ty);
        ctx.private = request.prior_private;
        if request.proposed_new_state.is_null() {
            if !prior.is_null() {
                resource.plan_destroy(ctx, &prior).await?;
            }
            return Ok(PlanResponse {
                planned_private: std::mem::take(&mut ctx.private),
                ..PlanResponse::default()
            });
        }
        let config = request.config.conform(&ty);
        let mut proposed =
            plan::apply_defaults(schema, &config, request.proposed_new_state.conform(&ty));
        if prior.is_null() {
            proposed = plan::unknown_computed(schema, proposed);
        }
        let planned = resource.plan(ctx, &prior, &proposed, &config).await?;
        Ok(PlanResponse {
            planned_state: finish(schema, planned.state),
            requires_replace: if prior.is_null() {
                Vec::new()
            } else {
                planned.requires_replace
            },
            planned_private: std::mem::take(&mut ctx.private),
            diagnostics: Diagnostics::new(),
        })
    }

    async fn apply_inner(
        &self,
        request: ApplyRequest,
        ctx: &mut Context<P::Data>,
    ) -> Result<ApplyResponse, Diagnostics> {
        let (resource, schema) = self.resource(&request.type_name)?;
        let ty = schema.type_of();
        let prior = request.prior_state.conform(&ty);
        let planned = request.planned_state.conform(&ty);
        let config = request.config.conform(&ty);
        ctx.private = request.planned_private;
        let (result, fallback) = if planned.is_null() {
            let result = resource.delete(ctx, &prior).await.map(|()| RawValue::Null);
            (result, prior)
        } else if prior.is_null() {
            (
                resource.create(ctx, &planned, &config).await,
                RawValue::Null,
            )
        } else {
            let result = resource.update(ctx, &prior, &planned, &config).await;
            (result, prior)
        };
        let (new_state, diagnostics) = match result {
            Ok(state) => {
                let state = finish(schema, state);
                let mut diagnostics = Diagnostics::new();
                if !state.is_wholly_known() {
                    diagnostics.extend(unknown_after("apply", &request.type_name));
                }
                (state, diagnostics)
            }
            Err(ApplyError {
                diagnostics,
                partial_state,
            }) => (
                finish(schema, partial_state.unwrap_or(fallback)),
                diagnostics,
            ),
        };
        Ok(ApplyResponse {
            new_state,
            private: std::mem::take(&mut ctx.private),
            diagnostics,
        })
    }

    async fn upgrade_inner(
        &self,
        request: UpgradeStateRequest,
        ctx: &mut Context<P::Data>,
    ) -> Result<RawValue, Diagnostics> {
        let (resource, schema) = self.resource(&request.type_name)?;
        let json: serde_json::Value = if request.raw_state_json.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&request.raw_state_json).map_err(|e| {
                Diagnostics::from_error(
                    "Unreadable Stored State",
                    format!(
                        "The stored state of this {} is not valid JSON ({e}). Remove the \
                         resource from state and import it again.",
                        request.type_name
                    ),
                )
            })?
        };
        let state = if request.version == schema.version {
            RawValue::from_json(&json, &schema.type_of()).map_err(|e| {
                Diagnostics::from_error(
                    "Unreadable Stored State",
                    format!(
                        "The stored state of this {} does not match its schema ({e}). Remove \
                         the resource from state and import it again.",
                        request.type_name
                    ),
                )
            })?
        } else if request.version > schema.version {
            return Err(Diagnostics::from_error(
                "State Written By A Newer Provider",
                format!(
                    "The state of this {} was written with schema version {}, but this provider \
                     version only knows versions up to {}. Use the newer provider version.",
                    request.type_name, request.version, schema.version
                ),
            ));
        } else {
            resource.upgrade_state(ctx, request.version, json).await?
        };
        let state = finish(schema, state);
        if !state.is_wholly_known() {
            return Err(unknown_after("state upgrade", &request.type_name));
        }
        Ok(state)
    }
}

/// Merges the context's diagnostics (warnings, errors pushed there) before `result`'s.
fn merged(ctx: Context<impl Sized>, result: Result<(), Diagnostics>) -> Diagnostics {
    let mut diagnostics = ctx.diagnostics;
    if let Err(errors) = result {
        diagnostics.extend(errors);
    }
    diagnostics
}

#[async_trait]
impl<P: Provider> ProviderService for Server<P> {
    fn schemas(&self) -> &ProviderSchemas {
        &self.schemas
    }

    async fn validate_provider_config(&self, config: RawValue) -> Diagnostics {
        let mut ctx = self.context(ClientCapabilities::default());
        let result = match self.provider_config(config) {
            Ok(config) => self.provider.validate(&mut ctx, config).await,
            Err(diagnostics) => Err(diagnostics),
        };
        merged(ctx, result)
    }

    async fn configure_provider(&self, request: ConfigureRequest) -> Diagnostics {
        let mut ctx = self.context(request.client_capabilities);
        let result = match self.provider_config(request.config) {
            Ok(config) => self.provider.configure(&mut ctx, config).await,
            Err(diagnostics) => Err(diagnostics),
        };
        let result = result.map(|data| {
            *self.data.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(data));
        });
        merged(ctx, result)
    }

    async fn validate_resource_config(&self, request: ValidateRequest) -> Diagnostics {
        let mut ctx = self.context(request.client_capabilities);
        let result = async {
            let (resource, schema) = self.resource(&request.type_name)?;
            let config = request.config.conform(&schema.type_of());
            if !request.client_capabilities.write_only_attributes_allowed {
                let mut diagnostics = Diagnostics::new();
                for path in plan::configured_write_only(schema, &config) {
                    diagnostics.extend(write_only_not_allowed(&path));
                }
                if diagnostics.has_errors() {
                    return Err(diagnostics);
                }
            }
            resource.validate(&mut ctx, &config).await
        }
        .await;
        merged(ctx, result)
    }

    async fn validate_data_source_config(&self, request: ValidateRequest) -> Diagnostics {
        let mut ctx = self.context(request.client_capabilities);
        let result = async {
            let (source, schema) = self.data_source(&request.type_name)?;
            let config = request.config.conform(&schema.type_of());
            source.validate(&mut ctx, &config).await
        }
        .await;
        merged(ctx, result)
    }

    async fn upgrade_resource_state(&self, request: UpgradeStateRequest) -> UpgradeStateResponse {
        let mut ctx = self.context(ClientCapabilities::default());
        match self.upgrade_inner(request, &mut ctx).await {
            Ok(upgraded_state) => UpgradeStateResponse {
                upgraded_state,
                diagnostics: ctx.diagnostics,
            },
            Err(errors) => UpgradeStateResponse {
                upgraded_state: RawValue::Null,
                diagnostics: merged(ctx, Err(errors)),
            },
        }
    }

    async fn read_resource(&self, request: ReadRequest) -> ReadResponse {
        let mut ctx = match self.configured_context(request.client_capabilities) {
            Ok(ctx) => ctx,
            Err(diagnostics) => {
                return ReadResponse {
                    new_state: request.current_state,
                    private: request.private,
                    diagnostics,
                };
            }
        };
        let (resource, schema) = match self.resource(&request.type_name) {
            Ok(found) => found,
            Err(diagnostics) => {
                return ReadResponse {
                    new_state: request.current_state,
                    private: request.private,
                    diagnostics,
                };
            }
        };
        let current = request.current_state.conform(&schema.type_of());
        ctx.private = request.private.clone();
        let result = resource.read(&mut ctx, &current).await;
        match result {
            Ok(state) => {
                let state = finish(schema, state);
                let mut diagnostics = ctx.diagnostics;
                if !state.is_wholly_known() {
                    diagnostics.extend(unknown_after("read", &request.type_name));
                    return ReadResponse {
                        new_state: finish(schema, current),
                        private: request.private,
                        diagnostics,
                    };
                }
                ReadResponse {
                    new_state: state,
                    private: ctx.private,
                    diagnostics,
                }
            }
            Err(errors) => {
                let mut diagnostics = ctx.diagnostics;
                diagnostics.extend(errors);
                ReadResponse {
                    new_state: finish(schema, current),
                    private: request.private,
                    diagnostics,
                }
            }
        }
    }

    async fn plan_resource_change(&self, request: PlanRequest) -> PlanResponse {
        let mut ctx = match self.configured_context(request.client_capabilities) {
            Ok(ctx) => ctx,
            Err(diagnostics) => {
                return PlanResponse {
                    diagnostics,
                    ..PlanResponse::default()
                };
            }
        };
        match self.plan_inner(request, &mut ctx).await {
            Ok(mut response) => {
                response.diagnostics = ctx.diagnostics;
                response
            }
            Err(errors) => PlanResponse {
                diagnostics: merged(ctx, Err(errors)),
                ..PlanResponse::default()
            },
        }
    }

    async fn apply_resource_change(&self, request: ApplyRequest) -> ApplyResponse {
        let mut ctx = match self.configured_context(ClientCapabilities::default()) {
            Ok(ctx) => ctx,
            Err(diagnostics) => {
                return ApplyResponse {
                    new_state: request.prior_state,
                    private: Vec::new(),
                    diagnostics,
                };
            }
        };
        let prior = request.prior_state.clone();
        match self.apply_inner(request, &mut ctx).await {
            Ok(mut response) => {
                let mut diagnostics = std::mem::take(&mut ctx.diagnostics);
                diagnostics.extend(response.diagnostics);
                response.diagnostics = diagnostics;
                response
            }
            Err(errors) => ApplyResponse {
                new_state: prior,
                private: Vec::new(),
                diagnostics: merged(ctx, Err(errors)),
            },
        }
    }

    async fn import_resource_state(&self, request: ImportRequest) -> ImportResponse {
        let mut ctx = match self.configured_context(request.client_capabilities) {
            Ok(ctx) => ctx,
            Err(diagnostics) => {
                return ImportResponse {
                    imported: Vec::new(),
                    diagnostics,
                };
            }
        };
        let result = async {
            let (resource, schema) = self.resource(&request.type_name)?;
            let state = finish(schema, resource.import(&mut ctx, &request.id).await?);
            Ok(ImportedResource {
                type_name: request.type_name.clone(),
                state,
                private: std::mem::take(&mut ctx.private),
            })
        }
        .await;
        match result {
            Ok(imported) => ImportResponse {
                imported: vec![imported],
                diagnostics: ctx.diagnostics,
            },
            Err(errors) => ImportResponse {
                imported: Vec::new(),
                diagnostics: merged(ctx, Err(errors)),
            },
        }
    }

    async fn read_data_source(&self, request: ReadDataRequest) -> ReadDataResponse {
        let mut ctx = match self.configured_context(request.client_capabilities) {
            Ok(ctx) => ctx,
            Err(diagnostics) => {
                return ReadDataResponse {
                    state: RawValue::Null,
                    diagnostics,
                };
            }
        };
        let result = async {
            let (source, schema) = self.data_source(&request.type_name)?;
            let config = request.config.conform(&schema.type_of());
            let state = finish(schema, source.read(&mut ctx, &config).await?);
            if !state.is_wholly_known() {
                return Err(unknown_after("read", &request.type_name));
            }
            Ok(state)
        }
        .await;
        match result {
            Ok(state) => ReadDataResponse {
                state,
                diagnostics: ctx.diagnostics,
            },
            Err(errors) => ReadDataResponse {
                state: RawValue::Null,
                diagnostics: merged(ctx, Err(errors)),
            },
        }
    }

    fn stop(&self) {
        let mut current = self.cancel.lock().unwrap_or_else(PoisonError::into_inner);
        current.cancel();
        *current = CancellationToken::new();
    }
}
