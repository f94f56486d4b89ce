//! The traits a provider implements: [`Provider`] (configuration schema, validate, configure,
//! the list of resources and data sources), [`Resource`] (schema with version, validate, plan,
//! create, read, update, delete, import, upgrade state) and [`DataSource`] (schema, validate,
//! read). Every method gets a [`Context`]: the cancellation token it must observe, the
//! provider data, the client capabilities, private state bytes, and a sink for warnings.
//!
//! Resources and data sources are written against typed models (serde structs of
//! [`Value<T>`](crate::framework::model::Value)); the object-safe [`DynResource`] and
//! [`DynDataSource`] wrappers, implemented for every `Resource`/`DataSource`, convert at the
//! border so the dispatcher ([`crate::framework::server`]) deals in [`RawValue`]s only.
//!
//! Must not depend on tonic, prost, kube, git2, or any other module of this crate.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::{ModelError, from_raw_unknown_upward, to_raw};
use crate::framework::path::AttrPath;
use crate::framework::schema::Schema;
use crate::framework::service::ClientCapabilities;
use crate::framework::value::RawValue;

/// What every provider, resource and data source method receives besides its data.
#[derive(Debug)]
pub struct Context<D> {
    cancel: CancellationToken,
    data: Option<Arc<D>>,
    /// What Terraform (or OpenTofu) announced it supports, when the request carries it.
    pub client_capabilities: ClientCapabilities,
    /// Warnings (and errors) to return alongside the result. Errors pushed here fail the
    /// operation as well.
    pub diagnostics: Diagnostics,
    /// Private state bytes: on input the stored (or planned) bytes of the request, on output
    /// the bytes to store. Empty means none.
    pub private: Vec<u8>,
}

impl<D> Context<D> {
    /// A context observing `cancel`, with the provider data if configured.
    pub fn new(
        cancel: CancellationToken,
        data: Option<Arc<D>>,
        client_capabilities: ClientCapabilities,
    ) -> Self {
        Self {
            cancel,
            data,
            client_capabilities,
            diagnostics: Diagnostics::new(),
            private: Vec::new(),
        }
    }

    /// The token cancelled by StopProvider (Ctrl-C). Long operations must select on
    /// [`CancellationToken::cancelled`] and return promptly with what they have.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Whether StopProvider was called during this operation.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// The provider data from ConfigureProvider.
    ///
    /// # Errors
    ///
    /// A diagnostic when the provider has not been configured (a Terraform or provider bug).
    pub fn data(&self) -> Result<&Arc<D>, Diagnostics> {
        self.data.as_ref().ok_or_else(|| {
            Diagnostics::from_error(
                "Provider Not Configured",
                "The provider was asked to act before ConfigureProvider succeeded. This is a bug \
                 in the provider or in Terraform; please report it.",
            )
        })
    }

    /// Adds a warning about the attribute at `path`.
    pub fn warn_at(
        &mut self,
        path: AttrPath,
        summary: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.diagnostics.warning_at(path, summary, detail);
    }

    /// Adds a warning not tied to an attribute.
    pub fn warn(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.diagnostics.warning(summary, detail);
    }
}

/// The proposal a resource plans from (not called for destroy; see [`Resource::plan_destroy`]).
#[derive(Clone, Debug, PartialEq)]
pub struct PlanChange<M> {
    /// The prior state; `None` on create.
    pub prior: Option<M>,
    /// Terraform's proposed new state after the generic rules: schema defaults filled in and,
    /// on create, computed attributes still null made unknown. On update, computed attributes
    /// not in configuration hold their prior values; set those that will change to unknown.
    pub proposed: M,
    /// The configuration (may contain unknowns; write-only values are only here).
    pub config: M,
}

/// What a resource plans.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned<M> {
    /// The planned new state.
    pub state: M,
    /// Attributes whose change forces replacement (see
    /// [`plan::requires_replace`](crate::framework::plan::requires_replace)).
    pub requires_replace: Vec<AttrPath>,
}

impl<M> Planned<M> {
    /// A plan with no replacement.
    pub fn new(state: M) -> Self {
        Self {
            state,
            requires_replace: Vec::new(),
        }
    }
}

/// A failed create, update or delete: the diagnostics, and the state of whatever exists now, if
/// anything. A create that returns a partial state is kept untainted: the framework reports its
/// errors as warnings (Terraform would taint the object, and the next apply would replace it),
/// so that state must record what is left to do for the next plan to show it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApplyError<M> {
    /// What went wrong.
    pub diagnostics: Diagnostics,
    /// The object as it exists after the failure; `None` keeps the prior state (or none on
    /// create).
    pub partial_state: Option<M>,
}

impl<M> From<Diagnostics> for ApplyError<M> {
    fn from(diagnostics: Diagnostics) -> Self {
        Self {
            diagnostics,
            partial_state: None,
        }
    }
}

/// The provider itself.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// What Configure hands to resources and data sources.
    type Data: Send + Sync + 'static;
    /// The provider configuration model.
    type Config: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The provider configuration schema.
    fn schema(&self) -> Schema;

    /// ValidateProviderConfig: reject contradictions and malformed values (the configuration may
    /// contain unknowns). Never connects.
    async fn validate(
        &self,
        ctx: &mut Context<Self::Data>,
        config: Self::Config,
    ) -> Result<(), Diagnostics> {
        let _ = (ctx, config);
        Ok(())
    }

    /// ConfigureProvider: build the provider data. Never connects; unknown values are normal.
    async fn configure(
        &self,
        ctx: &mut Context<Self::Data>,
        config: Self::Config,
    ) -> Result<Self::Data, Diagnostics>;

    /// The managed resources.
    fn resources(&self) -> Vec<Box<dyn DynResource<Self::Data>>>;

    /// The data sources.
    fn data_sources(&self) -> Vec<Box<dyn DynDataSource<Self::Data>>>;
}

/// A managed resource, written against its typed model.
///
/// Errors are returned as [`Diagnostics`] (summary, detail saying what to do, attribute path);
/// warnings go to [`Context::diagnostics`].
#[async_trait]
pub trait Resource<D: Send + Sync + 'static>: Send + Sync + 'static {
    /// The Terraform data of this resource (a serde struct of `Value<T>` fields).
    type Model: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The full type name, e.g. `flux_instance`.
    fn type_name(&self) -> &'static str;

    /// The schema, with its version.
    fn schema(&self) -> Schema;

    /// ValidateResourceConfig (configuration may contain unknowns; no provider data).
    async fn validate(&self, ctx: &mut Context<D>, config: Self::Model) -> Result<(), Diagnostics> {
        let _ = (ctx, config);
        Ok(())
    }

    /// PlanResourceChange for create and update. The default plans the proposal unchanged.
    async fn plan(
        &self,
        ctx: &mut Context<D>,
        change: PlanChange<Self::Model>,
    ) -> Result<Planned<Self::Model>, Diagnostics> {
        let _ = ctx;
        Ok(Planned::new(change.proposed))
    }

    /// PlanResourceChange for destroy: a chance to warn or refuse. The default does nothing.
    async fn plan_destroy(
        &self,
        ctx: &mut Context<D>,
        prior: Self::Model,
    ) -> Result<(), Diagnostics> {
        let _ = (ctx, prior);
        Ok(())
    }

    /// ApplyResourceChange, create. Returns the new state, wholly known.
    async fn create(
        &self,
        ctx: &mut Context<D>,
        planned: Self::Model,
        config: Self::Model,
    ) -> Result<Self::Model, ApplyError<Self::Model>>;

    /// ReadResource: the live object, normalised; `None` when it no longer exists.
    async fn read(
        &self,
        ctx: &mut Context<D>,
        state: Self::Model,
    ) -> Result<Option<Self::Model>, Diagnostics>;

    /// ApplyResourceChange, update. Returns the new state, wholly known.
    async fn update(
        &self,
        ctx: &mut Context<D>,
        prior: Self::Model,
        planned: Self::Model,
        config: Self::Model,
    ) -> Result<Self::Model, ApplyError<Self::Model>>;

    /// ApplyResourceChange, destroy. Must be idempotent (already gone is success).
    async fn delete(
        &self,
        ctx: &mut Context<D>,
        prior: Self::Model,
    ) -> Result<(), ApplyError<Self::Model>>;

    /// ImportResourceState: the state for the import ID (Terraform calls Read next). The
    /// default refuses.
    async fn import(&self, ctx: &mut Context<D>, id: &str) -> Result<Self::Model, Diagnostics> {
        let _ = (ctx, id);
        Err(Diagnostics::from_error(
            "Import Not Supported",
            format!("The resource type {} cannot be imported.", self.type_name()),
        ))
    }

    /// UpgradeResourceState from an older schema `version` (the stored JSON is in that
    /// version's shape). Only called when `version` is below the current schema version; the
    /// default refuses.
    async fn upgrade_state(
        &self,
        ctx: &mut Context<D>,
        version: i64,
        state: serde_json::Value,
    ) -> Result<Self::Model, Diagnostics> {
        let _ = (ctx, state);
        Err(Diagnostics::from_error(
            "Unsupported State Version",
            format!(
                "The state of this {} was written with schema version {version}, which this \
                 provider version cannot upgrade. Use the provider version that wrote it, or \
                 remove the resource from state and import it again.",
                self.type_name()
            ),
        ))
    }
}

/// A data source, written against its typed model.
#[async_trait]
pub trait DataSource<D: Send + Sync + 'static>: Send + Sync + 'static {
    /// The Terraform data of this data source.
    type Model: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// The full type name, e.g. `flux_instance`.
    fn type_name(&self) -> &'static str;

    /// The schema.
    fn schema(&self) -> Schema;

    /// ValidateDataResourceConfig (configuration may contain unknowns; no provider data).
    async fn validate(&self, ctx: &mut Context<D>, config: Self::Model) -> Result<(), Diagnostics> {
        let _ = (ctx, config);
        Ok(())
    }

    /// ReadDataSource: the configuration (wholly known) completed with computed values.
    async fn read(
        &self,
        ctx: &mut Context<D>,
        config: Self::Model,
    ) -> Result<Self::Model, Diagnostics>;
}

/// The untyped face of a [`Resource`], as the dispatcher calls it. Implemented for every
/// `Resource`; inputs are already shaped by the schema, outputs are shaped by the dispatcher.
#[async_trait]
pub trait DynResource<D: Send + Sync + 'static>: Send + Sync + 'static {
    /// See [`Resource::type_name`].
    fn type_name(&self) -> &'static str;
    /// See [`Resource::schema`].
    fn schema(&self) -> Schema;
    /// See [`Resource::validate`].
    async fn validate(&self, ctx: &mut Context<D>, config: &RawValue) -> Result<(), Diagnostics>;
    /// See [`Resource::plan`]; `prior` is null on create.
    async fn plan(
        &self,
        ctx: &mut Context<D>,
        prior: &RawValue,
        proposed: &RawValue,
        config: &RawValue,
    ) -> Result<Planned<RawValue>, Diagnostics>;
    /// See [`Resource::plan_destroy`].
    async fn plan_destroy(&self, ctx: &mut Context<D>, prior: &RawValue)
    -> Result<(), Diagnostics>;
    /// See [`Resource::create`].
    async fn create(
        &self,
        ctx: &mut Context<D>,
        planned: &RawValue,
        config: &RawValue,
    ) -> Result<RawValue, ApplyError<RawValue>>;
    /// See [`Resource::read`]; null when gone.
    async fn read(&self, ctx: &mut Context<D>, state: &RawValue) -> Result<RawValue, Diagnostics>;
    /// See [`Resource::update`].
    async fn update(
        &self,
        ctx: &mut Context<D>,
        prior: &RawValue,
        planned: &RawValue,
        config: &RawValue,
    ) -> Result<RawValue, ApplyError<RawValue>>;
    /// See [`Resource::delete`].
    async fn delete(
        &self,
        ctx: &mut Context<D>,
        prior: &RawValue,
    ) -> Result<(), ApplyError<RawValue>>;
    /// See [`Resource::import`].
    async fn import(&self, ctx: &mut Context<D>, id: &str) -> Result<RawValue, Diagnostics>;
    /// See [`Resource::upgrade_state`].
    async fn upgrade_state(
        &self,
        ctx: &mut Context<D>,
        version: i64,
        state: serde_json::Value,
    ) -> Result<RawValue, Diagnostics>;
}

/// The untyped face of a [`DataSource`]. Implemented for every `DataSource`.
#[async_trait]
pub trait DynDataSource<D: Send + Sync + 'static>: Send + Sync + 'static {
    /// See [`DataSource::type_name`].
    fn type_name(&self) -> &'static str;
    /// See [`DataSource::schema`].
    fn schema(&self) -> Schema;
    /// See [`DataSource::validate`].
    async fn validate(&self, ctx: &mut Context<D>, config: &RawValue) -> Result<(), Diagnostics>;
    /// See [`DataSource::read`].
    async fn read(&self, ctx: &mut Context<D>, config: &RawValue) -> Result<RawValue, Diagnostics>;
}

/// A diagnostic for a model that does not match its schema: always a provider bug.
pub fn model_error(what: &str, error: &ModelError) -> Diagnostics {
    Diagnostics::from_error(
        "Provider Bug: Model Does Not Match Schema",
        format!(
            "The provider could not convert the {what}: {error}. This is a bug in the provider; \
             please report it."
        ),
    )
}

fn decode<M: DeserializeOwned>(what: &str, value: &RawValue) -> Result<M, Diagnostics> {
    from_raw_unknown_upward(value).map_err(|e| model_error(what, &e))
}

fn encode<M: Serialize>(what: &str, model: &M) -> Result<RawValue, Diagnostics> {
    to_raw(model).map_err(|e| model_error(what, &e))
}

fn encode_apply_error<M: Serialize>(error: ApplyError<M>) -> ApplyError<RawValue> {
    let mut diagnostics = error.diagnostics;
    let partial_state = error.partial_state.and_then(|m| match to_raw(&m) {
        Ok(raw) => Some(raw),
        Err(e) => {
            diagnostics.extend(model_error("partial state", &e));
            None
        }
    });
    ApplyError {
        diagnostics,
        partial_state,
    }
}

#[async_trait]
impl<D: Send + Sync + 'static, R: Resource<D>> DynResource<D> for R {
    fn type_name(&self) -> &'static str {
        Resource::type_name(self)
    }

    fn schema(&self) -> Schema {
        Resource::schema(self)
    }

    async fn validate(&self, ctx: &mut Context<D>, config: &RawValue) -> Result<(), Diagnostics> {
        let config = decode("configuration", config)?;
        Resource::validate(self, ctx, config).await
    }

    async fn plan(
        &self,
        ctx: &mut Context<D>,
        prior: &RawValue,
        proposed: &RawValue,
        config: &RawValue,
    ) -> Result<Planned<RawValue>, Diagnostics> {
        let change = PlanChange {
            prior: if prior.is_null() {
                None
            } else {
                Some(decode("prior state", prior)?)
            },
            proposed: decode("proposed new state", proposed)?,
            config: decode("configuration", config)?,
        };
        let planned = Resource::plan(self, ctx, change).await?;
        Ok(Planned {
            state: encode("planned state", &planned.state)?,
            requires_replace: planned.requires_replace,
        })
    }

    async fn plan_destroy(
        &self,
        ctx: &mut Context<D>,
        prior: &RawValue,
    ) -> Result<(), Diagnostics> {
        let prior = decode("prior state", prior)?;
        Resource::plan_destroy(self, ctx, prior).await
    }

    async fn create(
        &self,
        ctx: &mut Context<D>,
        planned: &RawValue,
        config: &RawValue,
    ) -> Result<RawValue, ApplyError<RawValue>> {
        let planned = decode("planned state", planned)?;
        let config = decode("configuration", config)?;
        match Resource::create(self, ctx, planned, config).await {
            Ok(state) => Ok(encode("new state", &state)?),
            Err(error) => Err(encode_apply_error(error)),
        }
    }

    async fn read(&self, ctx: &mut Context<D>, state: &RawValue) -> Result<RawValue, Diagnostics> {
        let state = decode("current state", state)?;
        match Resource::read(self, ctx, state).await? {
            Some(state) => encode("refreshed state", &state),
            None => Ok(RawValue::Null),
        }
    }

    async fn update(
        &self,
        ctx: &mut Context<D>,
        prior: &RawValue,
        planned: &RawValue,
        config: &RawValue,
    ) -> Result<RawValue, ApplyError<RawValue>> {
        let prior = decode("prior state", prior)?;
        let planned = decode("planned state", planned)?;
        let config = decode("configuration", config)?;
        match Resource::update(self, ctx, prior, planned, config).await {
            Ok(state) => Ok(encode("new state", &state)?),
            Err(error) => Err(encode_apply_error(error)),
        }
    }

    async fn delete(
        &self,
        ctx: &mut Context<D>,
        prior: &RawValue,
    ) -> Result<(), ApplyError<RawValue>> {
        let prior = decode("prior state", prior)?;
        Resource::delete(self, ctx, prior)
            .await
            .map_err(encode_apply_error)
    }

    async fn import(&self, ctx: &mut Context<D>, id: &str) -> Result<RawValue, Diagnostics> {
        let state = Resource::import(self, ctx, id).await?;
        encode("imported state", &state)
    }

    async fn upgrade_state(
        &self,
        ctx: &mut Context<D>,
        version: i64,
        state: serde_json::Value,
    ) -> Result<RawValue, Diagnostics> {
        let state = Resource::upgrade_state(self, ctx, version, state).await?;
        encode("upgraded state", &state)
    }
}

#[async_trait]
impl<D: Send + Sync + 'static, S: DataSource<D>> DynDataSource<D> for S {
    fn type_name(&self) -> &'static str {
        DataSource::type_name(self)
    }

    fn schema(&self) -> Schema {
        DataSource::schema(self)
    }

    async fn validate(&self, ctx: &mut Context<D>, config: &RawValue) -> Result<(), Diagnostics> {
        let config = decode("configuration", config)?;
        DataSource::validate(self, ctx, config).await
    }

    async fn read(&self, ctx: &mut Context<D>, config: &RawValue) -> Result<RawValue, Diagnostics> {
        let config = decode("configuration", config)?;
        let state = DataSource::read(self, ctx, config).await?;
        encode("data source state", &state)
    }
}
