//! The dispatcher: [`Server`] implements [`ProviderService`] over a [`Provider`]. It builds the
//! schemas once, routes requests to resources and data sources by type name, applies the generic
//! plan rules (defaults, computed → unknown on create, destroy, write-only → null in every
//! response), refuses write-only values from clients that cannot handle them, keeps the
//! "configured" state, and implements StopProvider by cancelling the current
//! [`CancellationToken`] and installing a fresh one.
//!
//! Must not depend on tonic, prost, kube, git2, or any other module of this crate.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::framework::diagnostics::{Diagnostic, Diagnostics, Severity};
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
    /// Built on first use (GetProviderSchema or the first RPC that needs a type), so that the
    /// handshake does not wait for it.
    schemas: OnceLock<ProviderSchemas>,
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

/// The errors of a create that left an object behind, as warnings (see `apply_inner`): each
/// says what failed, then that the object is kept in state untainted and what to do.
fn incomplete_create(diagnostics: Diagnostics, type_name: &str) -> Diagnostics {
    let mut out = Diagnostics::new();
    for d in diagnostics.0 {
        if d.severity != Severity::Error {
            out.0.push(d);
            continue;
        }
        let detail = format!(
            "{} This {type_name} was created but is not finished. Terraform keeps it in state \
             and it is not marked tainted: a tainted object is destroyed and created again by \
             the next apply, which would uninstall what it manages. The next plan shows the \
             remaining work as an in-place update; apply again to finish it. (To make this run \
             fail, add a lifecycle postcondition on the resource's readiness attribute.)",
            d.detail_naming_path()
        );
        out.0.push(Diagnostic {
            severity: Severity::Warning,
            summary: format!("Create Incomplete: {}", d.summary),
            detail,
            path: d.path,
        });
    }
    out
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
    /// A server over `provider`; every schema is built once, on first use (capabilities:
    /// `plan_destroy`).
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
        Self {
            provider,
            schemas: OnceLock::new(),
            resources,
            data_sources,
            data: RwLock::new(None),
            cancel: Mutex::new(CancellationToken::new()),
        }
    }

    fn build_schemas(&self) -> ProviderSchemas {
        ProviderSchemas {
            provider: self.provider.schema(),
            resources: self
                .resources
                .iter()
                .map(|(name, r)| (name.clone(), r.schema()))
                .collect(),
            data_sources: self
                .data_sources
                .iter()
                .map(|(name, d)| (name.clone(), d.schema()))
                .collect(),
            capabilities: ServerCapabilities {
                plan_destroy: true,
                ..ServerCapabilities::default()
            },
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
            self.schemas().resources.get(type_name),
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
            self.schemas().data_sources.get(type_name),
        ) {
            (Some(source), Some(schema)) => Ok((source.as_ref(), schema)),
            _ => Err(unknown_type("Data Source", type_name)),
        }
    }

    fn provider_config(&self, config: RawValue) -> Result<P::Config, Diagnostics> {
        let config = config.conform(&self.schemas().provider.type_of());
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
        let creating = prior.is_null();
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
            // A create that wrote something: Terraform would mark the object tainted on any
            // error, and the next plan would replace it (destroy, then create). For the objects
            // this provider manages that means uninstalling, so the object is kept untainted
            // and the errors are reported as warnings; its state records what is left to do,
            // which the next plan shows as an in-place update.
            Err(ApplyError {
                diagnostics,
                partial_state: Some(partial),
            }) if creating => (
                finish(schema, partial),
                incomplete_create(diagnostics, &request.type_name),
            ),
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
        self.schemas.get_or_init(|| self.build_schemas())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::diagnostics::{Diagnostic, Severity};
    use crate::framework::model::Value;
    use crate::framework::resource::{DataSource, PlanChange, Planned, Resource};
    use crate::framework::schema::{Attribute, Nesting};
    use pretty_assertions::assert_eq;
    use serde::{Deserialize, Serialize};
    use std::time::Duration;

    /// Provider data of the test provider: the configured greeting.
    #[derive(Debug)]
    struct Data {
        prefix: String,
    }

    #[derive(Serialize, Deserialize)]
    struct ProviderConfig {
        prefix: Value<String>,
    }

    struct TestProvider;

    #[async_trait]
    impl Provider for TestProvider {
        type Data = Data;
        type Config = ProviderConfig;

        fn schema(&self) -> Schema {
            Schema::new(
                0,
                "Test provider.",
                vec![Attribute::string("prefix").description("ID prefix.")],
            )
        }

        async fn validate(
            &self,
            _ctx: &mut Context<Data>,
            config: ProviderConfig,
        ) -> Result<(), Diagnostics> {
            match config.prefix {
                Value::Known(p) if p.is_empty() => Err(Diagnostics::from_error_at(
                    AttrPath::attr("prefix"),
                    "Empty Prefix",
                    "Set prefix to a non-empty string.",
                )),
                _ => Ok(()),
            }
        }

        async fn configure(
            &self,
            _ctx: &mut Context<Data>,
            config: ProviderConfig,
        ) -> Result<Data, Diagnostics> {
            Ok(Data {
                prefix: config.prefix.unwrap_or("id".into()),
            })
        }

        fn resources(&self) -> Vec<Box<dyn DynResource<Data>>> {
            vec![Box::new(Thing), Box::new(Waiter)]
        }

        fn data_sources(&self) -> Vec<Box<dyn DynDataSource<Data>>> {
            vec![Box::new(Echo)]
        }
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct Settings {
        mode: Value<String>,
        password: Value<String>,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    struct ThingModel {
        id: Value<String>,
        name: Value<String>,
        namespace: Value<String>,
        wait: Value<bool>,
        token: Value<String>,
        size: Value<i64>,
        settings: Value<Settings>,
    }

    /// A resource whose `id` is `<prefix>-<namespace>-<name>`, `size` the name's length;
    /// `namespace` requires replacement; `token` and `settings.password` are write-only.
    struct Thing;

    #[async_trait]
    impl Resource<Data> for Thing {
        type Model = ThingModel;

        fn type_name(&self) -> &'static str {
            "test_thing"
        }

        fn schema(&self) -> Schema {
            Schema::new(
                1,
                "A thing.",
                vec![
                    Attribute::string("id").computed().description("ID."),
                    Attribute::string("name").required().description("Name."),
                    Attribute::string("namespace")
                        .default_value("default")
                        .description("Namespace."),
                    Attribute::bool("wait")
                        .default_value(true)
                        .description("Wait."),
                    Attribute::string("token")
                        .sensitive()
                        .write_only()
                        .description("Token."),
                    Attribute::number("size").computed().description("Size."),
                    Attribute::nested(
                        "settings",
                        Nesting::Single,
                        vec![
                            Attribute::string("mode").description("Mode."),
                            Attribute::string("password")
                                .write_only()
                                .description("Password."),
                        ],
                    )
                    .description("Settings."),
                ],
            )
        }

        async fn validate(
            &self,
            _ctx: &mut Context<Data>,
            config: ThingModel,
        ) -> Result<(), Diagnostics> {
            if config.name.as_known().is_some_and(|n| n.contains('/')) {
                return Err(Diagnostics::from_error_at(
                    AttrPath::attr("name"),
                    "Invalid Name",
                    "The name must not contain '/'.",
                ));
            }
            Ok(())
        }

        async fn plan(
            &self,
            ctx: &mut Context<Data>,
            change: PlanChange<ThingModel>,
        ) -> Result<Planned<ThingModel>, Diagnostics> {
            let mut state = change.proposed;
            let Some(prior) = change.prior else {
                return Ok(Planned::new(state));
            };
            if state.name != prior.name || state.namespace != prior.namespace {
                state.id = Value::Unknown;
                state.size = Value::Unknown;
                ctx.warn_at(AttrPath::attr("name"), "Renaming", "The thing is renamed.");
            }
            let prior_raw =
                crate::framework::model::to_raw(&prior).map_err(|e| model_error("x", &e))?;
            let planned_raw =
                crate::framework::model::to_raw(&state).map_err(|e| model_error("x", &e))?;
            Ok(Planned {
                requires_replace: plan::requires_replace(
                    &prior_raw,
                    &planned_raw,
                    &[AttrPath::attr("namespace")],
                ),
                state,
            })
        }

        async fn create(
            &self,
            ctx: &mut Context<Data>,
            planned: ThingModel,
            config: ThingModel,
        ) -> Result<ThingModel, ApplyError<ThingModel>> {
            let prefix = ctx.data()?.prefix.clone();
            // The write-only token arrives through the configuration only.
            if config.token.as_known().map(String::as_str) == Some("bad") {
                return Err(Diagnostics::from_error_at(
                    AttrPath::attr("token"),
                    "Token Rejected",
                    "The token was rejected.",
                )
                .into());
            }
            ctx.private = b"created".to_vec();
            Ok(finished(&prefix, planned))
        }

        async fn read(
            &self,
            _ctx: &mut Context<Data>,
            state: ThingModel,
        ) -> Result<Option<ThingModel>, Diagnostics> {
            if state.name.as_known().map(String::as_str) == Some("gone") {
                return Ok(None);
            }
            Ok(Some(state))
        }

        async fn update(
            &self,
            ctx: &mut Context<Data>,
            _prior: ThingModel,
            planned: ThingModel,
            _config: ThingModel,
        ) -> Result<ThingModel, ApplyError<ThingModel>> {
            let prefix = ctx.data()?.prefix.clone();
            Ok(finished(&prefix, planned))
        }

        async fn delete(
            &self,
            _ctx: &mut Context<Data>,
            prior: ThingModel,
        ) -> Result<(), ApplyError<ThingModel>> {
            if prior.name.as_known().map(String::as_str) == Some("stuck") {
                return Err(Diagnostics::from_error("Delete Failed", "Still there.").into());
            }
            Ok(())
        }

        async fn import(
            &self,
            ctx: &mut Context<Data>,
            id: &str,
        ) -> Result<ThingModel, Diagnostics> {
            let Some((namespace, name)) = id.split_once('/') else {
                return Err(Diagnostics::from_error(
                    "Invalid Import ID",
                    "Use <namespace>/<name>.",
                ));
            };
            let prefix = ctx.data()?.prefix.clone();
            Ok(finished(
                &prefix,
                ThingModel {
                    id: Value::Null,
                    name: Value::Known(name.into()),
                    namespace: Value::Known(namespace.into()),
                    wait: Value::Known(true),
                    token: Value::Known("never stored".into()),
                    size: Value::Null,
                    settings: Value::Null,
                },
            ))
        }

        async fn upgrade_state(
            &self,
            _ctx: &mut Context<Data>,
            version: i64,
            state: serde_json::Value,
        ) -> Result<ThingModel, Diagnostics> {
            // Version 0 called the name `title`.
            assert_eq!(version, 0);
            let title = state["title"].as_str().unwrap_or_default().to_string();
            Ok(ThingModel {
                id: Value::Known(state["id"].as_str().unwrap_or_default().into()),
                size: Value::Known(i64::try_from(title.len()).unwrap()),
                name: Value::Known(title),
                namespace: Value::Known("default".into()),
                wait: Value::Known(true),
                token: Value::Null,
                settings: Value::Null,
            })
        }
    }

    fn finished(prefix: &str, mut model: ThingModel) -> ThingModel {
        let name = model.name.clone().unwrap_or_default();
        let namespace = model.namespace.clone().unwrap_or_default();
        model.id = Value::Known(format!("{prefix}-{namespace}-{name}"));
        model.size = Value::Known(i64::try_from(name.len()).unwrap());
        model
    }

    #[derive(Serialize, Deserialize)]
    struct WaiterModel {
        id: Value<String>,
    }

    /// A resource whose create waits until cancelled.
    struct Waiter;

    #[async_trait]
    impl Resource<Data> for Waiter {
        type Model = WaiterModel;
        fn type_name(&self) -> &'static str {
            "test_waiter"
        }
        fn schema(&self) -> Schema {
            Schema::new(
                0,
                "Waits.",
                vec![Attribute::string("id").computed().description("ID.")],
            )
        }
        async fn create(
            &self,
            ctx: &mut Context<Data>,
            _planned: WaiterModel,
            _config: WaiterModel,
        ) -> Result<WaiterModel, ApplyError<WaiterModel>> {
            ctx.cancellation().cancelled().await;
            Err(ApplyError {
                diagnostics: Diagnostics::from_error("Cancelled", "Stopped while waiting."),
                partial_state: Some(WaiterModel {
                    id: Value::Known("half-done".into()),
                }),
            })
        }
        async fn read(
            &self,
            _ctx: &mut Context<Data>,
            state: WaiterModel,
        ) -> Result<Option<WaiterModel>, Diagnostics> {
            Ok(Some(state))
        }
        async fn update(
            &self,
            _ctx: &mut Context<Data>,
            _prior: WaiterModel,
            planned: WaiterModel,
            _config: WaiterModel,
        ) -> Result<WaiterModel, ApplyError<WaiterModel>> {
            Ok(planned)
        }
        async fn delete(
            &self,
            _ctx: &mut Context<Data>,
            _prior: WaiterModel,
        ) -> Result<(), ApplyError<WaiterModel>> {
            Ok(())
        }
    }

    #[derive(Serialize, Deserialize)]
    struct EchoModel {
        input: Value<String>,
        output: Value<String>,
    }

    /// A data source copying `input` to `output` with the provider prefix.
    struct Echo;

    #[async_trait]
    impl DataSource<Data> for Echo {
        type Model = EchoModel;
        fn type_name(&self) -> &'static str {
            "test_echo"
        }
        fn schema(&self) -> Schema {
            Schema::new(
                0,
                "Echo.",
                vec![
                    Attribute::string("input").required().description("In."),
                    Attribute::string("output").computed().description("Out."),
                ],
            )
        }
        async fn read(
            &self,
            ctx: &mut Context<Data>,
            config: EchoModel,
        ) -> Result<EchoModel, Diagnostics> {
            let prefix = ctx.data()?.prefix.clone();
            Ok(EchoModel {
                output: config.input.clone().map(|i| format!("{prefix}:{i}")),
                input: config.input,
            })
        }
    }

    fn s(text: &str) -> RawValue {
        RawValue::from(text)
    }

    fn thing(pairs: Vec<(&str, RawValue)>) -> RawValue {
        let mut fields: BTreeMap<String, RawValue> = [
            "id",
            "name",
            "namespace",
            "wait",
            "token",
            "size",
            "settings",
        ]
        .iter()
        .map(|k| (k.to_string(), RawValue::Null))
        .collect();
        for (k, v) in pairs {
            fields.insert(k.to_string(), v);
        }
        RawValue::Object(fields)
    }

    fn settings(mode: RawValue, password: RawValue) -> RawValue {
        RawValue::object([("mode", mode), ("password", password)])
    }

    const WO: ClientCapabilities = ClientCapabilities {
        deferral_allowed: false,
        write_only_attributes_allowed: true,
    };

    async fn configured() -> Server<TestProvider> {
        let server = Server::new(TestProvider);
        let diags = server
            .configure_provider(ConfigureRequest {
                terraform_version: "1.11.4".into(),
                config: RawValue::object([("prefix", s("p"))]),
                client_capabilities: WO,
            })
            .await;
        assert_eq!(diags, Diagnostics::new());
        server
    }

    fn plan_request(prior: RawValue, proposed: RawValue, config: RawValue) -> PlanRequest {
        PlanRequest {
            type_name: "test_thing".into(),
            prior_state: prior,
            proposed_new_state: proposed,
            config,
            prior_private: Vec::new(),
            client_capabilities: WO,
        }
    }

    fn stored() -> RawValue {
        thing(vec![
            ("id", s("p-default-a")),
            ("name", s("a")),
            ("namespace", s("default")),
            ("wait", RawValue::Bool(true)),
            ("size", RawValue::from(1)),
            ("settings", settings(s("fast"), RawValue::Null)),
        ])
    }

    #[test]
    fn schemas_are_built_once_with_plan_destroy() {
        let server = Server::new(TestProvider);
        let schemas = server.schemas();
        assert_eq!(
            schemas.capabilities,
            ServerCapabilities {
                plan_destroy: true,
                get_provider_schema_optional: false,
                move_resource_state: false,
            }
        );
        assert_eq!(
            schemas.resources.keys().collect::<Vec<_>>(),
            vec!["test_thing", "test_waiter"]
        );
        assert_eq!(
            schemas.data_sources.keys().collect::<Vec<_>>(),
            vec!["test_echo"]
        );
        assert_eq!(schemas.resources["test_thing"], Resource::schema(&Thing));
        for schema in schemas
            .resources
            .values()
            .chain(schemas.data_sources.values())
        {
            assert_eq!(schema.lint(), Vec::<String>::new());
        }
    }

    #[tokio::test]
    async fn create_plan_apply_read_flow() {
        let server = configured().await;
        let config = thing(vec![
            ("name", s("a")),
            ("token", s("secret")),
            ("settings", settings(s("fast"), s("pw"))),
        ]);
        // Terraform's proposal on create is the configuration (computed attributes null).
        let planned = server
            .plan_resource_change(plan_request(RawValue::Null, config.clone(), config.clone()))
            .await;
        assert_eq!(
            planned,
            PlanResponse {
                planned_state: thing(vec![
                    ("id", RawValue::unknown()),
                    ("name", s("a")),
                    ("namespace", s("default")),
                    ("wait", RawValue::Bool(true)),
                    ("size", RawValue::unknown()),
                    ("settings", settings(s("fast"), RawValue::Null)),
                ]),
                requires_replace: vec![],
                planned_private: vec![],
                diagnostics: Diagnostics::new(),
            }
        );
        let applied = server
            .apply_resource_change(ApplyRequest {
                type_name: "test_thing".into(),
                prior_state: RawValue::Null,
                planned_state: planned.planned_state,
                config: config.clone(),
                planned_private: planned.planned_private,
            })
            .await;
        assert_eq!(
            applied,
            ApplyResponse {
                new_state: stored(),
                private: b"created".to_vec(),
                diagnostics: Diagnostics::new(),
            }
        );
        let read = server
            .read_resource(ReadRequest {
                type_name: "test_thing".into(),
                current_state: applied.new_state.clone(),
                private: applied.private.clone(),
                client_capabilities: WO,
            })
            .await;
        assert_eq!(
            read,
            ReadResponse {
                new_state: stored(),
                private: b"created".to_vec(),
                diagnostics: Diagnostics::new(),
            }
        );
    }

    #[tokio::test]
    async fn update_plan_keeps_prior_computed_values_or_marks_them_unknown() {
        let server = configured().await;
        // No change: Terraform's proposal carries the prior computed values; nothing is unknown.
        let config = thing(vec![
            ("name", s("a")),
            ("settings", settings(s("fast"), RawValue::Null)),
        ]);
        let proposed = stored();
        let unchanged = server
            .plan_resource_change(plan_request(stored(), proposed, config))
            .await;
        assert_eq!(
            unchanged,
            PlanResponse {
                planned_state: stored(),
                ..PlanResponse::default()
            }
        );
        // A namespace change: id and size unknown, replacement, and the resource's warning.
        let config = thing(vec![("name", s("a")), ("namespace", s("other"))]);
        let proposed = thing(vec![
            ("id", s("p-default-a")),
            ("name", s("a")),
            ("namespace", s("other")),
            ("wait", RawValue::Bool(true)),
            ("size", RawValue::from(1)),
        ]);
        let replaced = server
            .plan_resource_change(plan_request(stored(), proposed, config))
            .await;
        assert_eq!(
            replaced,
            PlanResponse {
                planned_state: thing(vec![
                    ("id", RawValue::unknown()),
                    ("name", s("a")),
                    ("namespace", s("other")),
                    ("wait", RawValue::Bool(true)),
                    ("size", RawValue::unknown()),
                ]),
                requires_replace: vec![AttrPath::attr("namespace")],
                planned_private: vec![],
                diagnostics: Diagnostics(vec![Diagnostic {
                    severity: Severity::Warning,
                    summary: "Renaming".into(),
                    detail: "The thing is renamed.".into(),
                    path: Some(AttrPath::attr("name")),
                }]),
            }
        );
    }

    #[tokio::test]
    async fn destroy_plan_and_apply() {
        let server = configured().await;
        let plan = server
            .plan_resource_change(PlanRequest {
                prior_private: b"keep".to_vec(),
                ..plan_request(stored(), RawValue::Null, RawValue::Null)
            })
            .await;
        assert_eq!(
            plan,
            PlanResponse {
                planned_state: RawValue::Null,
                requires_replace: vec![],
                planned_private: b"keep".to_vec(),
                diagnostics: Diagnostics::new(),
            }
        );
        let destroyed = server
            .apply_resource_change(ApplyRequest {
                type_name: "test_thing".into(),
                prior_state: stored(),
                planned_state: RawValue::Null,
                config: RawValue::Null,
                planned_private: vec![],
            })
            .await;
        assert_eq!(destroyed, ApplyResponse::default());
        // A failed delete keeps the prior state so Terraform does not forget the object.
        let stuck = thing(vec![("id", s("x")), ("name", s("stuck"))]);
        let failed = server
            .apply_resource_change(ApplyRequest {
                type_name: "test_thing".into(),
                prior_state: stuck.clone(),
                planned_state: RawValue::Null,
                config: RawValue::Null,
                planned_private: vec![],
            })
            .await;
        assert_eq!(
            failed,
            ApplyResponse {
                new_state: stuck,
                private: vec![],
                diagnostics: Diagnostics::from_error("Delete Failed", "Still there."),
            }
        );
    }

    #[tokio::test]
    async fn read_of_a_vanished_object_is_null() {
        let server = configured().await;
        let read = server
            .read_resource(ReadRequest {
                type_name: "test_thing".into(),
                current_state: thing(vec![("id", s("x")), ("name", s("gone"))]),
                private: vec![],
                client_capabilities: WO,
            })
            .await;
        assert_eq!(read, ReadResponse::default());
    }

    #[tokio::test]
    async fn import_returns_state_with_write_only_null() {
        let server = configured().await;
        let imported = server
            .import_resource_state(ImportRequest {
                type_name: "test_thing".into(),
                id: "default/a".into(),
                client_capabilities: WO,
            })
            .await;
        assert_eq!(
            imported,
            ImportResponse {
                imported: vec![ImportedResource {
                    type_name: "test_thing".into(),
                    state: thing(vec![
                        ("id", s("p-default-a")),
                        ("name", s("a")),
                        ("namespace", s("default")),
                        ("wait", RawValue::Bool(true)),
                        ("size", RawValue::from(1)),
                    ]),
                    private: vec![],
                }],
                diagnostics: Diagnostics::new(),
            }
        );
        let bad = server
            .import_resource_state(ImportRequest {
                type_name: "test_thing".into(),
                id: "no-slash".into(),
                client_capabilities: WO,
            })
            .await;
        assert_eq!(
            bad,
            ImportResponse {
                imported: vec![],
                diagnostics: Diagnostics::from_error(
                    "Invalid Import ID",
                    "Use <namespace>/<name>."
                ),
            }
        );
    }

    #[tokio::test]
    async fn upgrade_state_cases() {
        let server = Server::new(TestProvider);
        struct Case {
            name: &'static str,
            version: i64,
            json: &'static str,
            want: UpgradeStateResponse,
        }
        let cases = vec![
            Case {
                name: "current version is decoded by the schema, write-only nulled",
                version: 1,
                json: r#"{"id":"p-default-a","name":"a","namespace":"default","wait":true,"size":1,"token":"leaked","settings":{"mode":"fast","password":"pw"}}"#,
                want: UpgradeStateResponse {
                    upgraded_state: stored(),
                    diagnostics: Diagnostics::new(),
                },
            },
            Case {
                name: "older version goes through the resource",
                version: 0,
                json: r#"{"id":"p-default-a","title":"a"}"#,
                want: UpgradeStateResponse {
                    upgraded_state: thing(vec![
                        ("id", s("p-default-a")),
                        ("name", s("a")),
                        ("namespace", s("default")),
                        ("wait", RawValue::Bool(true)),
                        ("size", RawValue::from(1)),
                    ]),
                    diagnostics: Diagnostics::new(),
                },
            },
            Case {
                name: "newer version is refused",
                version: 2,
                json: "{}",
                want: UpgradeStateResponse {
                    upgraded_state: RawValue::Null,
                    diagnostics: Diagnostics::from_error(
                        "State Written By A Newer Provider",
                        "The state of this test_thing was written with schema version 2, but \
                         this provider version only knows versions up to 1. Use the newer \
                         provider version.",
                    ),
                },
            },
        ];
        for case in cases {
            let got = server
                .upgrade_resource_state(UpgradeStateRequest {
                    type_name: "test_thing".into(),
                    version: case.version,
                    raw_state_json: case.json.as_bytes().to_vec(),
                })
                .await;
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    #[tokio::test]
    async fn write_only_needs_client_support() {
        let server = Server::new(TestProvider);
        let config = thing(vec![
            ("name", s("a")),
            ("token", s("secret")),
            ("settings", settings(RawValue::Null, s("pw"))),
        ]);
        let old_client = server
            .validate_resource_config(ValidateRequest {
                type_name: "test_thing".into(),
                config: config.clone(),
                client_capabilities: ClientCapabilities::default(),
            })
            .await;
        let message = |path: &str| {
            format!(
                "The attribute {path} is write-only and has a value, but this Terraform or \
                 OpenTofu version does not support write-only attributes. Write-only attributes \
                 need Terraform 1.11 or OpenTofu 1.11 or later: upgrade, or remove the value."
            )
        };
        let mut want = Diagnostics::new();
        want.error_at(
            AttrPath::attr("token"),
            "Write-Only Attribute Not Allowed",
            message("token"),
        );
        want.error_at(
            AttrPath::attr("settings").then_attr("password"),
            "Write-Only Attribute Not Allowed",
            message("settings.password"),
        );
        assert_eq!(old_client, want);
        let new_client = server
            .validate_resource_config(ValidateRequest {
                type_name: "test_thing".into(),
                config,
                client_capabilities: WO,
            })
            .await;
        assert_eq!(new_client, Diagnostics::new());
    }

    #[tokio::test]
    async fn validation_reaches_provider_resource_and_data_source() {
        let server = Server::new(TestProvider);
        assert_eq!(
            server
                .validate_provider_config(RawValue::object([("prefix", s(""))]))
                .await,
            Diagnostics::from_error_at(
                AttrPath::attr("prefix"),
                "Empty Prefix",
                "Set prefix to a non-empty string."
            )
        );
        assert_eq!(
            server
                .validate_provider_config(RawValue::object([("prefix", RawValue::unknown())]))
                .await,
            Diagnostics::new()
        );
        assert_eq!(
            server
                .validate_resource_config(ValidateRequest {
                    type_name: "test_thing".into(),
                    config: thing(vec![("name", s("a/b"))]),
                    client_capabilities: WO,
                })
                .await,
            Diagnostics::from_error_at(
                AttrPath::attr("name"),
                "Invalid Name",
                "The name must not contain '/'."
            )
        );
        assert_eq!(
            server
                .validate_data_source_config(ValidateRequest {
                    type_name: "test_echo".into(),
                    config: RawValue::object([("input", RawValue::unknown())]),
                    client_capabilities: WO,
                })
                .await,
            Diagnostics::new()
        );
    }

    #[tokio::test]
    async fn data_source_read() {
        let server = configured().await;
        let read = server
            .read_data_source(ReadDataRequest {
                type_name: "test_echo".into(),
                config: RawValue::object([("input", s("hi")), ("output", RawValue::Null)]),
                client_capabilities: WO,
            })
            .await;
        assert_eq!(
            read,
            ReadDataResponse {
                state: RawValue::object([("input", s("hi")), ("output", s("p:hi"))]),
                diagnostics: Diagnostics::new(),
            }
        );
    }

    #[tokio::test]
    async fn unknown_type_is_a_provider_bug() {
        let server = configured().await;
        let response = server
            .plan_resource_change(PlanRequest {
                type_name: "test_nothing".into(),
                ..plan_request(RawValue::Null, RawValue::Null, RawValue::Null)
            })
            .await;
        assert_eq!(
            response,
            PlanResponse {
                diagnostics: Diagnostics::from_error(
                    "Unknown Resource Type",
                    "This provider has no resource type named \"test_nothing\", yet Terraform \
                     asked for it. This is a bug in the provider (its schema and its \
                     implementation disagree); please report it."
                ),
                ..PlanResponse::default()
            }
        );
    }

    #[tokio::test]
    async fn requests_before_configure_get_a_clear_diagnostic() {
        let server = Server::new(TestProvider);
        let response = server
            .read_resource(ReadRequest {
                type_name: "test_thing".into(),
                current_state: stored(),
                private: vec![],
                client_capabilities: WO,
            })
            .await;
        assert_eq!(
            response,
            ReadResponse {
                new_state: stored(),
                private: vec![],
                diagnostics: Diagnostics::from_error(
                    "Provider Not Configured",
                    "The provider was asked to act before ConfigureProvider succeeded. This is \
                     a bug in the provider or in Terraform; please report it."
                ),
            }
        );
    }

    #[tokio::test]
    async fn stop_cancels_a_waiting_apply_and_later_requests_run() {
        let server = Arc::new(configured().await);
        let apply = |server: Arc<Server<TestProvider>>| async move {
            server
                .apply_resource_change(ApplyRequest {
                    type_name: "test_waiter".into(),
                    prior_state: RawValue::Null,
                    planned_state: RawValue::object([("id", RawValue::unknown())]),
                    config: RawValue::object([("id", RawValue::Null)]),
                    planned_private: vec![],
                })
                .await
        };
        let waiting = tokio::spawn(apply(server.clone()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "the apply should be waiting");
        server.stop();
        let response = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("stop() should end the wait promptly")
            .unwrap();
        assert_eq!(
            response,
            ApplyResponse {
                new_state: RawValue::object([("id", s("half-done"))]),
                private: vec![],
                // Kept untainted: the error of the create is a warning.
                diagnostics: incomplete_create(
                    Diagnostics::from_error("Cancelled", "Stopped while waiting."),
                    "test_waiter"
                ),
            }
        );
        assert_eq!(response.diagnostics.0.len(), 1);
        assert_eq!(response.diagnostics.0[0].severity, Severity::Warning);
        assert_eq!(
            response.diagnostics.0[0].summary,
            "Create Incomplete: Cancelled"
        );
        assert!(
            response.diagnostics.0[0]
                .detail
                .starts_with("Stopped while waiting. This test_waiter was created")
        );
        // A fresh token: a later request is not cancelled.
        let later = tokio::spawn(apply(server.clone()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !later.is_finished(),
            "a request after stop() must run normally"
        );
        server.stop();
        later.await.unwrap();
        // Non-waiting requests keep working after stop().
        let read = server
            .read_resource(ReadRequest {
                type_name: "test_thing".into(),
                current_state: stored(),
                private: vec![],
                client_capabilities: WO,
            })
            .await;
        assert_eq!(read.new_state, stored());
    }

    #[tokio::test]
    async fn failed_create_with_partial_state_is_returned() {
        let server = configured().await;
        let config = thing(vec![("name", s("a")), ("token", s("bad"))]);
        let applied = server
            .apply_resource_change(ApplyRequest {
                type_name: "test_thing".into(),
                prior_state: RawValue::Null,
                planned_state: thing(vec![("id", RawValue::unknown()), ("name", s("a"))]),
                config,
                planned_private: vec![],
            })
            .await;
        assert_eq!(
            applied,
            ApplyResponse {
                new_state: RawValue::Null,
                private: vec![],
                diagnostics: Diagnostics::from_error_at(
                    AttrPath::attr("token"),
                    "Token Rejected",
                    "The token was rejected."
                ),
            }
        );
    }
}
