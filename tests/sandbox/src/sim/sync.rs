//! The sync simulation: what source-controller and kustomize-controller do for a `GitRepository`
//! and the `Kustomization`s that use it, in every namespace where the Flux Operator runs — so
//! tests prove that what was pushed to Git is consumable by Flux with the credentials in the
//! referenced Secret.
//!
//! - **GitRepository** (`source.toolkit.fluxcd.io/v1`): fetches `spec.url` at `spec.ref` (`name`,
//!   `branch` or `tag`; unset means branch `master`) with the real `git` CLI, authenticating with
//!   the Secret `spec.secretRef.name`: `username`/`password` (HTTP basic) or `bearerToken` (sent as
//!   an `Authorization` header through `GIT_CONFIG_*` variables, never on the command line),
//!   `ca.crt`, or `identity`/`known_hosts` (and `password` for an encrypted key) for SSH, with
//!   strict host-key checking against those `known_hosts` only. Reports
//!   `status.artifact.revision` as source-controller v1 does: `<ref>@sha1:<commit>` where `<ref>`
//!   is the ref *as written* — so the operator's `ref.name: refs/heads/main` gives
//!   `refs/heads/main@sha1:<commit>` and `ref.branch: main` gives `main@sha1:<commit>`. Failures
//!   set `Ready=False` with reason `AuthenticationFailed` (Secret missing) or `GitOperationFailed`
//!   (clone failed; git's own message quoted). Re-fetches every `spec.interval`, on a generation
//!   change and on `reconcile.fluxcd.io/requestedAt`.
//! - **Kustomization** (`kustomize.toolkit.fluxcd.io/v1`, `sourceRef.kind: GitRepository`): renders
//!   `spec.path` of the fetched tree — a `kustomization.yaml` `resources` list (files and
//!   directories) when present, else every YAML manifest below the path, a subdirectory with its
//!   own `kustomization.yaml` taken as a unit — and server-side applies the objects (force) as
//!   field manager `kustomize-controller`, Namespaces and CRDs first, labelled
//!   `kustomize.toolkit.fluxcd.io/name|namespace`. Objects annotated
//!   `kustomize.toolkit.fluxcd.io/ssa: Ignore` in the cluster are not applied (the operator's
//!   take-over marker). With `spec.prune`, objects of the previous `status.inventory` that the new
//!   revision no longer has are deleted unless annotated `kustomize.toolkit.fluxcd.io/prune:
//!   Disabled`. Reports `status.inventory`, `lastAttemptedRevision`, `lastAppliedRevision` (the
//!   source revision) and `Ready` (`ReconciliationSucceeded`, or `ArtifactFailed`/`BuildFailed`/
//!   `ReconciliationFailed` with the reason). Re-applies on a new source revision, a generation
//!   change, `requestedAt` and every `spec.interval`.
//!
//! - **Finalizers**: both controllers add `finalizers.fluxcd.io`. Deleting a Kustomization with
//!   `spec.prune` (and not suspended) first deletes every object of its inventory that still
//!   carries its labels and is not annotated `kustomize.toolkit.fluxcd.io/prune: Disabled`, then
//!   releases the finalizer — so the operator garbage-collecting the sync Kustomization (sync
//!   removed, or its kind changed) prunes what it applied. A GitRepository's finalizer is just
//!   released. Each controller acts only while its Deployment (`source-controller`,
//!   `kustomize-controller`) exists in the namespace and is not being deleted: once the
//!   operator's uninstall deleted them, nothing is pruned.
//!
//! Not simulated: kustomize patches, images, generators, `targetNamespace`, `postBuild`,
//! `dependsOn`, health checks, `commit`/`semver` refs. Namespaced objects without a namespace
//! go to `default`.
//! Depends on the simulator's [`super::instance::Ctx`] (operator gating, retry interval) and
//! [`super::ops`]; the `git` CLI must be on `PATH`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef as KubeRef;
use kube::runtime::watcher;
use serde_json::{Value, json};

use super::instance::{ConstantBackoff, Ctx, REQUESTED_AT_ANNOTATION, SimError, generation};
use super::inventory::{ObjectRef, read_inventory, sha256_hex};
use super::ops::{Kube, OpsError, annotation, finalizers, is_deleting};
use super::status::{self, READY, condition, merge_conditions, parse_duration};

/// Field manager of the objects a Kustomization applies.
pub const KUSTOMIZE_MANAGER: &str = "kustomize-controller";
/// Field manager of GitRepository status writes.
pub const SOURCE_MANAGER: &str = "source-controller";
/// Label naming the Kustomization that applied an object.
pub const NAME_LABEL: &str = "kustomize.toolkit.fluxcd.io/name";
/// Label naming the namespace of the Kustomization that applied an object.
pub const NAMESPACE_LABEL: &str = "kustomize.toolkit.fluxcd.io/namespace";
/// Annotation that makes kustomize-controller skip applying an object (`Ignore`).
pub const SSA_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/ssa";
/// Annotation that keeps kustomize-controller from pruning an object (`Disabled`).
pub const PRUNE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/prune";
/// The finalizer of the Flux controllers.
pub const FLUX_FINALIZER: &str = "finalizers.fluxcd.io";
/// How long one `git` command may run.
const GIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Re-check interval while the operator is not running in the namespace.
const GATED_REQUEUE: Duration = Duration::from_secs(1);

/// A fetched tree: the revision and every file by repository path.
#[derive(Debug, Clone)]
struct Artifact {
    revision: String,
    files: BTreeMap<String, Vec<u8>>,
}

/// What an object was last reconciled at: generation, requested-at token, source revision.
type Seen = (i64, Option<String>, String, Instant);

/// Shared state of the two simulated controllers.
struct SyncCtx {
    sim: Arc<Ctx>,
    source: Kube,
    kustomize: Kube,
    artifacts: Mutex<HashMap<String, Artifact>>,
    seen: Mutex<HashMap<String, Seen>>,
}

fn resource(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural)
}

fn gitrepository_resource() -> ApiResource {
    resource(
        "source.toolkit.fluxcd.io",
        "GitRepository",
        "gitrepositories",
    )
}

fn kustomization_resource() -> ApiResource {
    resource(
        "kustomize.toolkit.fluxcd.io",
        "Kustomization",
        "kustomizations",
    )
}

fn key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

impl SyncCtx {
    /// Whether the object needs work: changed since it was last handled, or its interval
    /// elapsed. Returns the remaining wait otherwise.
    fn pending(&self, obj: &Value, revision: &str, interval: Duration) -> Result<(), Duration> {
        let uid = obj["metadata"]["uid"].as_str().unwrap_or_default();
        let requested = annotation(obj, REQUESTED_AT_ANNOTATION).map(str::to_owned);
        let seen = self.seen.lock().ok().and_then(|m| m.get(uid).cloned());
        match seen {
            Some((g, r, rev, at)) if g == generation(obj) && r == requested && rev == revision => {
                let elapsed = at.elapsed();
                if elapsed < interval {
                    Err(interval - elapsed)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    fn record(&self, obj: &Value, revision: &str) {
        let uid = obj["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let requested = annotation(obj, REQUESTED_AT_ANNOTATION).map(str::to_owned);
        if let Ok(mut m) = self.seen.lock() {
            m.insert(
                uid,
                (
                    generation(obj),
                    requested,
                    revision.to_owned(),
                    Instant::now(),
                ),
            );
        }
    }
}

/// Runs the GitRepository and Kustomization simulations until the task is aborted.
pub async fn run(sim: Arc<Ctx>) {
    let client = sim.kube.client().clone();
    let ctx = Arc::new(SyncCtx {
        source: Kube::new(client.clone(), SOURCE_MANAGER),
        kustomize: Kube::new(client, KUSTOMIZE_MANAGER),
        sim,
        artifacts: Mutex::default(),
        seen: Mutex::default(),
    });
    futures::join!(run_sources(ctx.clone()), run_kustomizations(ctx));
}

async fn run_sources(ctx: Arc<SyncCtx>) {
    let ar = gitrepository_resource();
    let api: Api<DynamicObject> = Api::all_with(ctx.sim.kube.client().clone(), &ar);
    Controller::new_with(api, watcher::Config::default(), ar)
        .trigger_backoff(ConstantBackoff(Duration::from_millis(200)))
        .run(reconcile_source, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "gitrepository simulation");
            }
        })
        .await;
}

async fn run_kustomizations(ctx: Arc<SyncCtx>) {
    let ks_ar = kustomization_resource();
    let git_ar = gitrepository_resource();
    let client = ctx.sim.kube.client().clone();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ks_ar);
    let git_api: Api<DynamicObject> = Api::all_with(client, &git_ar);
    let controller = Controller::new_with(api, watcher::Config::default(), ks_ar.clone())
        .trigger_backoff(ConstantBackoff(Duration::from_millis(200)));
    let store = controller.store();
    let mapped_ar = ks_ar.clone();
    controller
        .watches_with(
            git_api,
            git_ar,
            watcher::Config::default(),
            move |g: DynamicObject| {
                let ns = g.metadata.namespace.clone().unwrap_or_default();
                let name = g.metadata.name.clone().unwrap_or_default();
                store
                    .state()
                    .iter()
                    .filter(|k| {
                        let own = k.metadata.namespace.clone().unwrap_or_default();
                        let src = &k.data["spec"]["sourceRef"];
                        src["kind"] == "GitRepository"
                            && src["name"] == name.as_str()
                            && src["namespace"].as_str().unwrap_or(&own) == ns
                    })
                    .map(|k| KubeRef::from_obj_with(k.as_ref(), mapped_ar.clone()))
                    .collect::<Vec<_>>()
            },
        )
        .run(reconcile_kustomization, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                tracing::debug!(error = %e, "kustomization simulation");
            }
        })
        .await;
}

fn error_policy(_obj: Arc<DynamicObject>, err: &SimError, ctx: Arc<SyncCtx>) -> Action {
    tracing::debug!(error = %err, "sync simulation failed, retrying");
    Action::requeue(ctx.sim.config.retry_interval)
}

fn decode(obj: &DynamicObject) -> Result<(Value, ObjectRef), SimError> {
    let value = serde_json::to_value(obj).map_err(|e| SimError::Decode(e.to_string()))?;
    let me = ObjectRef::of(&value).map_err(|e| SimError::Decode(e.to_string()))?;
    Ok((value, me))
}

fn interval_of(obj: &Value, default: Duration) -> Duration {
    obj["spec"]["interval"]
        .as_str()
        .and_then(parse_duration)
        .filter(|d| !d.is_zero())
        .unwrap_or(default)
}

/// Writes `status` fields (merged) unless they already hold these values.
async fn write_status(
    kube: &Kube,
    me: &ObjectRef,
    obj: &Value,
    patch: Value,
) -> Result<(), SimError> {
    let current = &obj["status"];
    let unchanged = patch.as_object().is_some_and(|fields| {
        fields.iter().all(|(k, v)| {
            if k == "conditions" {
                strip_times(&current[k]) == strip_times(v)
            } else if k == "artifact" {
                current[k]["revision"] == v["revision"]
            } else {
                &current[k] == v
            }
        })
    });
    if !unchanged {
        kube.merge_patch(me, &json!({ "status": patch }), true)
            .await?;
    }
    Ok(())
}

fn strip_times(conditions: &Value) -> Value {
    let mut out = conditions.clone();
    if let Some(items) = out.as_array_mut() {
        for c in items {
            if let Some(m) = c.as_object_mut() {
                m.remove("lastTransitionTime");
            }
        }
    }
    out
}

fn ready_patch(obj: &Value, ok: bool, reason: &str, message: &str) -> Value {
    let gen_ = generation(obj);
    let ready = condition(
        READY,
        if ok { "True" } else { "False" },
        reason,
        message,
        gen_,
    );
    let mut patch = json!({
        "observedGeneration": gen_,
        "conditions": merge_conditions(&obj["status"]["conditions"], &[ready], &["Reconciling", "Stalled"]),
    });
    if let Some(at) = annotation(obj, REQUESTED_AT_ANNOTATION) {
        patch["lastHandledReconcileAt"] = json!(at);
    }
    patch
}

// ---------------------------------------------------------------------------------------------
// GitRepository
// ---------------------------------------------------------------------------------------------

/// Whether the controller Deployment `name` exists in `namespace` and is not being deleted.
async fn controller_running(kube: &Kube, namespace: &str, name: &str) -> Result<bool, SimError> {
    let r = ObjectRef {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        group: "apps".into(),
        kind: "Deployment".into(),
        version: "v1".into(),
    };
    Ok(kube.get(&r).await?.is_some_and(|d| !is_deleting(&d)))
}

/// Adds [`FLUX_FINALIZER`] when missing. `true` when it was added (the watch brings the
/// object back).
async fn ensure_flux_finalizer(kube: &Kube, me: &ObjectRef, obj: &Value) -> Result<bool, SimError> {
    let mut fins = finalizers(obj);
    if fins.iter().any(|f| f == FLUX_FINALIZER) {
        return Ok(false);
    }
    fins.push(FLUX_FINALIZER.to_owned());
    let rv = obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default();
    kube.set_finalizers(me, rv, &fins).await?;
    Ok(true)
}

/// Releases [`FLUX_FINALIZER`].
async fn release_flux_finalizer(kube: &Kube, me: &ObjectRef, obj: &Value) -> Result<(), SimError> {
    let fins: Vec<String> = finalizers(obj)
        .into_iter()
        .filter(|f| f != FLUX_FINALIZER)
        .collect();
    let rv = obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default();
    match kube.set_finalizers(me, rv, &fins).await {
        Ok(_) => Ok(()),
        Err(OpsError::Patch {
            source: kube::Error::Api(s),
            ..
        }) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn reconcile_source(obj: Arc<DynamicObject>, ctx: Arc<SyncCtx>) -> Result<Action, SimError> {
    let (obj, me) = decode(&obj)?;
    if !ctx.sim.operator_available(&me.namespace).await?
        || !controller_running(&ctx.source, &me.namespace, "source-controller").await?
    {
        return Ok(Action::requeue(GATED_REQUEUE));
    }
    if is_deleting(&obj) {
        if finalizers(&obj).iter().any(|f| f == FLUX_FINALIZER) {
            release_flux_finalizer(&ctx.source, &me, &obj).await?;
        }
        return Ok(Action::await_change());
    }
    if ensure_flux_finalizer(&ctx.source, &me, &obj).await? {
        return Ok(Action::await_change());
    }
    if obj["spec"]["suspend"] == true {
        return Ok(Action::await_change());
    }
    let interval = interval_of(&obj, Duration::from_secs(60));
    let cached = ctx
        .artifacts
        .lock()
        .ok()
        .and_then(|m| {
            m.get(&key(&me.namespace, &me.name))
                .map(|a| a.revision.clone())
        })
        .unwrap_or_default();
    if let Err(wait) = ctx.pending(&obj, &cached, interval) {
        return Ok(Action::requeue(wait));
    }
    match fetch(&ctx.source, &obj, &me.namespace).await {
        Ok(artifact) => {
            let revision = artifact.revision.clone();
            let digest = artifact_digest(&artifact);
            if let Ok(mut m) = ctx.artifacts.lock() {
                m.insert(key(&me.namespace, &me.name), artifact);
            }
            let message = format!("stored artifact for revision '{revision}'");
            let mut patch = ready_patch(&obj, true, "Succeeded", &message);
            let sha = revision.rsplit(':').next().unwrap_or_default();
            let path = format!("gitrepository/{}/{}/{sha}.tar.gz", me.namespace, me.name);
            patch["artifact"] = json!({
                "revision": revision, "digest": digest, "path": path,
                "url": format!("http://source-controller.{}.svc.cluster.local./{path}", me.namespace),
                "lastUpdateTime": status::now(),
            });
            write_status(&ctx.source, &me, &obj, patch).await?;
            ctx.record(&obj, &revision);
            Ok(Action::requeue(interval))
        }
        Err((reason, message)) => {
            write_status(
                &ctx.source,
                &me,
                &obj,
                ready_patch(&obj, false, reason, &message),
            )
            .await?;
            ctx.record(&obj, &cached);
            Ok(Action::requeue(ctx.sim.config.retry_interval.min(interval)))
        }
    }
}

fn artifact_digest(artifact: &Artifact) -> String {
    let mut all = Vec::new();
    for (path, content) in &artifact.files {
        all.extend_from_slice(path.as_bytes());
        all.push(0);
        all.extend_from_slice(sha256_hex(content).as_bytes());
    }
    format!("sha256:{}", sha256_hex(&all))
}

/// The Secret's data, decoded.
async fn secret_data(
    kube: &Kube,
    namespace: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, String>>, OpsError> {
    let r = ObjectRef {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        group: String::new(),
        kind: "Secret".into(),
        version: "v1".into(),
    };
    let Some(secret) = kube.get(&r).await? else {
        return Ok(None);
    };
    let mut out = BTreeMap::new();
    if let Some(data) = secret["data"].as_object() {
        for (k, v) in data {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .unwrap_or_default();
            out.insert(k.clone(), String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    if let Some(data) = secret["stringData"].as_object() {
        for (k, v) in data {
            out.insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
        }
    }
    Ok(Some(out))
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Self> {
        let dir = std::env::temp_dir().join(format!("sandbox-sync-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fetches the GitRepository's ref; `Err((reason, message))` as the controller reports it.
async fn fetch(
    kube: &Kube,
    obj: &Value,
    namespace: &str,
) -> Result<Artifact, (&'static str, String)> {
    let spec = &obj["spec"];
    let url = spec["url"].as_str().unwrap_or_default().to_owned();
    let reference = &spec["ref"];
    let (refspec, label) = if let Some(n) = reference["name"].as_str() {
        (n.to_owned(), n.to_owned())
    } else if let Some(b) = reference["branch"].as_str() {
        (format!("refs/heads/{b}"), b.to_owned())
    } else if let Some(t) = reference["tag"].as_str() {
        (format!("refs/tags/{t}"), t.to_owned())
    } else if reference.is_object() && !reference.as_object().is_some_and(|m| m.is_empty()) {
        return Err((
            "GitOperationFailed",
            "only ref.name, ref.branch and ref.tag are simulated".to_owned(),
        ));
    } else {
        ("refs/heads/master".to_owned(), "master".to_owned())
    };
    let data = match spec["secretRef"]["name"].as_str() {
        None => BTreeMap::new(),
        Some(name) => match secret_data(kube, namespace, name).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                return Err((
                    "AuthenticationFailed",
                    format!(
                        "failed to get secret '{namespace}/{name}': secrets \"{name}\" not found"
                    ),
                ));
            }
            Err(e) => return Err(("AuthenticationFailed", e.to_string())),
        },
    };
    let mut data = data;
    if spec["provider"] == "github" {
        // source-controller mints a GitHub App installation token from the Secret's keys.
        let token = super::githubapp::installation_token(&data)
            .await
            .map_err(|e| {
                (
                    "AuthenticationFailed",
                    format!("failed to get credential from 'github': {e}"),
                )
            })?;
        data = BTreeMap::from([
            (
                "username".to_owned(),
                super::githubapp::ACCESS_TOKEN_USERNAME.to_owned(),
            ),
            ("password".to_owned(), token),
        ]);
    }
    let scratch = Scratch::new().map_err(|e| ("GitOperationFailed", e.to_string()))?;
    let env = auth_env(&scratch.0, &url, &data).map_err(|m| ("AuthenticationFailed", m))?;
    let repo = scratch.0.join("repo");
    let fail = |m: String| {
        (
            "GitOperationFailed",
            format!("failed to checkout and determine revision: unable to clone '{url}': {m}"),
        )
    };
    git(&scratch.0, &env, &["init", "-q", "repo"])
        .await
        .map_err(fail)?;
    git(
        &repo,
        &env,
        &["fetch", "-q", "--depth=1", "--no-tags", &url, &refspec],
    )
    .await
    .map_err(fail)?;
    let sha = git(&repo, &env, &["rev-parse", "FETCH_HEAD"])
        .await
        .map_err(fail)?;
    let listing = git(
        &repo,
        &env,
        &["ls-tree", "-r", "-z", "--name-only", "FETCH_HEAD"],
    )
    .await
    .map_err(fail)?;
    let paths: Vec<&str> = listing.split('\0').filter(|p| !p.is_empty()).collect();
    let files = read_blobs(&repo, &env, &paths).await.map_err(fail)?;
    Ok(Artifact {
        revision: format!("{label}@sha1:{}", sha.trim()),
        files,
    })
}

/// Environment for `git` authenticating with the Secret's keys (files written into `dir`).
fn auth_env(
    dir: &Path,
    url: &str,
    data: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, String> {
    let mut env: Vec<(String, String)> = vec![
        ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
        ("GIT_CONFIG_GLOBAL".into(), "/dev/null".into()),
        ("GIT_TERMINAL_PROMPT".into(), "0".into()),
        ("GIT_ASKPASS".into(), "/bin/false".into()),
        ("HOME".into(), dir.display().to_string()),
    ];
    let write = |name: &str, content: &str, mode: u32| -> Result<PathBuf, String> {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join(name);
        let mut text = content.to_owned();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        std::fs::write(&path, text).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| e.to_string())?;
        Ok(path)
    };
    let mut config: Vec<(String, String)> = Vec::new();
    if url.starts_with("ssh://") || (!url.contains("://") && url.contains('@')) {
        let identity = data
            .get("identity")
            .ok_or("secret has no 'identity' key for SSH authentication")?;
        let known_hosts = data
            .get("known_hosts")
            .ok_or("secret has no 'known_hosts' key for SSH host-key verification")?;
        let key = write("identity", identity, 0o600)?;
        let hosts = write("known_hosts", known_hosts, 0o600)?;
        let mut ssh = format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} \
             -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes",
            key.display(),
            hosts.display()
        );
        match data.get("password") {
            Some(passphrase) => {
                let askpass = write(
                    "askpass.sh",
                    "#!/bin/sh\nprintf '%s\\n' \"$SANDBOX_SSH_PASSPHRASE\"",
                    0o700,
                )?;
                env.push(("SSH_ASKPASS".into(), askpass.display().to_string()));
                env.push(("SSH_ASKPASS_REQUIRE".into(), "force".into()));
                env.push(("SANDBOX_SSH_PASSPHRASE".into(), passphrase.clone()));
            }
            None => ssh.push_str(" -o BatchMode=yes"),
        }
        env.push(("GIT_SSH_COMMAND".into(), ssh));
    } else {
        if let Some(token) = data.get("bearerToken") {
            config.push((
                "http.extraHeader".into(),
                format!("Authorization: Bearer {token}"),
            ));
        } else if let (Some(user), Some(password)) = (data.get("username"), data.get("password")) {
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            config.push((
                "http.extraHeader".into(),
                format!("Authorization: Basic {basic}"),
            ));
        }
        if let Some(ca) = data.get("ca.crt") {
            let path = write("ca.crt", ca, 0o600)?;
            config.push(("http.sslCAInfo".into(), path.display().to_string()));
        }
    }
    env.push(("GIT_CONFIG_COUNT".into(), config.len().to_string()));
    for (i, (k, v)) in config.into_iter().enumerate() {
        env.push((format!("GIT_CONFIG_KEY_{i}"), k));
        env.push((format!("GIT_CONFIG_VALUE_{i}"), v));
    }
    Ok(env)
}

/// The contents of `paths` at `FETCH_HEAD`, read with one `git cat-file --batch` process (one
/// process per file made a fetch of a few thousand files take seconds). A path with a newline
/// (which the batch input cannot carry) is read on its own.
async fn read_blobs(
    repo: &Path,
    env: &[(String, String)],
    paths: &[&str],
) -> Result<BTreeMap<String, Vec<u8>>, String> {
    use tokio::io::AsyncWriteExt as _;
    let (batch, odd): (Vec<&str>, Vec<&str>) = paths.iter().partition(|p| !p.contains('\n'));
    let mut files = BTreeMap::new();
    for path in odd {
        let content = git_bytes(
            repo,
            env,
            &["cat-file", "blob", &format!("FETCH_HEAD:{path}")],
        )
        .await?;
        files.insert(path.to_owned(), content);
    }
    if batch.is_empty() {
        return Ok(files);
    }
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(["cat-file", "--batch"])
        .current_dir(repo)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| format!("running git: {e}"))?;
    let input: Vec<u8> = batch
        .iter()
        .flat_map(|p| format!("FETCH_HEAD:{p}\n").into_bytes())
        .collect();
    let mut stdin = child.stdin.take().ok_or("git cat-file: no stdin")?;
    // Written while the output is read, so that neither pipe can fill up and block the other.
    let writer = tokio::spawn(async move {
        let written = stdin.write_all(&input).await;
        drop(stdin);
        written
    });
    let out = tokio::time::timeout(GIT_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| "git cat-file timed out".to_owned())?
        .map_err(|e| format!("running git: {e}"))?;
    writer
        .await
        .map_err(|e| format!("git cat-file input: {e}"))?
        .map_err(|e| format!("git cat-file input: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    // Each answer: `<oid> <type> <size>\n<contents>\n`, or `<input> missing\n`.
    let mut rest = out.stdout.as_slice();
    for path in batch {
        let end = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or("git cat-file: truncated output")?;
        let header = String::from_utf8_lossy(&rest[..end]).into_owned();
        rest = &rest[end + 1..];
        let size: usize = match header.split(' ').collect::<Vec<_>>().as_slice() {
            [_, "blob", size] => size
                .parse()
                .map_err(|_| format!("git cat-file: {header}"))?,
            _ => return Err(format!("git cat-file FETCH_HEAD:{path}: {header}")),
        };
        if rest.len() < size + 1 {
            return Err("git cat-file: truncated output".to_owned());
        }
        files.insert(path.to_owned(), rest[..size].to_vec());
        rest = &rest[size + 1..];
    }
    Ok(files)
}

async fn git_bytes(cwd: &Path, env: &[(String, String)], args: &[&str]) -> Result<Vec<u8>, String> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(GIT_TIMEOUT, cmd.output())
        .await
        .map_err(|_| format!("git {} timed out", args.first().unwrap_or(&"")))?
        .map_err(|e| format!("running git: {e}"))?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let message = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        Err(message)
    }
}

async fn git(cwd: &Path, env: &[(String, String)], args: &[&str]) -> Result<String, String> {
    git_bytes(cwd, env, args)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

// ---------------------------------------------------------------------------------------------
// Kustomization
// ---------------------------------------------------------------------------------------------

async fn reconcile_kustomization(
    obj: Arc<DynamicObject>,
    ctx: Arc<SyncCtx>,
) -> Result<Action, SimError> {
    let (obj, me) = decode(&obj)?;
    if !ctx.sim.operator_available(&me.namespace).await?
        || !controller_running(&ctx.kustomize, &me.namespace, "kustomize-controller").await?
    {
        return Ok(Action::requeue(GATED_REQUEUE));
    }
    if is_deleting(&obj) {
        if finalizers(&obj).iter().any(|f| f == FLUX_FINALIZER) {
            if obj["spec"]["prune"] == true && obj["spec"]["suspend"] != true {
                prune_on_delete(&ctx.kustomize, &me, &obj).await?;
            }
            release_flux_finalizer(&ctx.kustomize, &me, &obj).await?;
        }
        return Ok(Action::await_change());
    }
    if ensure_flux_finalizer(&ctx.kustomize, &me, &obj).await? {
        return Ok(Action::await_change());
    }
    let source = &obj["spec"]["sourceRef"];
    if obj["spec"]["suspend"] == true || source["kind"] != "GitRepository" {
        return Ok(Action::await_change());
    }
    let interval = interval_of(&obj, Duration::from_secs(600));
    let retry = ctx.sim.config.retry_interval;
    let source_ns = source["namespace"]
        .as_str()
        .unwrap_or(&me.namespace)
        .to_owned();
    let source_name = source["name"].as_str().unwrap_or_default().to_owned();
    let source_ref = ObjectRef {
        namespace: source_ns.clone(),
        name: source_name.clone(),
        group: "source.toolkit.fluxcd.io".into(),
        kind: "GitRepository".into(),
        version: "v1".into(),
    };
    let live_source = ctx.kustomize.get(&source_ref).await?;
    let published = live_source
        .as_ref()
        .and_then(|s| s["status"]["artifact"]["revision"].as_str())
        .unwrap_or_default()
        .to_owned();
    let artifact = ctx
        .artifacts
        .lock()
        .ok()
        .and_then(|m| m.get(&key(&source_ns, &source_name)).cloned())
        .filter(|a| a.revision == published);
    let Some(artifact) = artifact else {
        let message = if live_source.is_none() {
            format!("Source 'GitRepository/{source_ns}/{source_name}' not found")
        } else {
            "Source artifact not found, retrying in 30s".to_owned()
        };
        write_status(
            &ctx.kustomize,
            &me,
            &obj,
            ready_patch(&obj, false, "ArtifactFailed", &message),
        )
        .await?;
        return Ok(Action::requeue(retry));
    };
    if let Err(wait) = ctx.pending(&obj, &artifact.revision, interval) {
        return Ok(Action::requeue(wait));
    }
    let revision = artifact.revision.clone();
    let path = obj["spec"]["path"].as_str().unwrap_or("./").to_owned();
    let objects = match render(&artifact.files, &path) {
        Ok(o) => o,
        Err((reason, message)) => {
            let mut patch = ready_patch(&obj, false, reason, &message);
            patch["lastAttemptedRevision"] = json!(revision);
            write_status(&ctx.kustomize, &me, &obj, patch).await?;
            ctx.record(&obj, &revision);
            return Ok(Action::requeue(retry.min(interval)));
        }
    };
    match apply_all(&ctx, &me, &obj, objects).await {
        Ok(inventory) => {
            let entries: Vec<Value> = inventory.iter().map(ObjectRef::entry).collect();
            let mut patch = ready_patch(
                &obj,
                true,
                "ReconciliationSucceeded",
                &format!("Applied revision: {revision}"),
            );
            patch["inventory"] = json!({ "entries": entries });
            patch["lastAppliedRevision"] = json!(revision);
            patch["lastAttemptedRevision"] = json!(revision);
            write_status(&ctx.kustomize, &me, &obj, patch).await?;
            ctx.record(&obj, &revision);
            Ok(Action::requeue(interval))
        }
        Err(message) => {
            let mut patch = ready_patch(&obj, false, "ReconciliationFailed", &message);
            patch["lastAttemptedRevision"] = json!(revision);
            write_status(&ctx.kustomize, &me, &obj, patch).await?;
            ctx.record(&obj, "");
            Ok(Action::requeue(retry.min(interval)))
        }
    }
}

/// kustomize-controller's finalization with `prune: true`: deletes every inventory object that
/// still carries this Kustomization's labels and is not annotated
/// `kustomize.toolkit.fluxcd.io/prune: Disabled`.
async fn prune_on_delete(kube: &Kube, me: &ObjectRef, obj: &Value) -> Result<(), SimError> {
    for r in read_inventory(obj) {
        let Some(live) = kube.get(&r).await? else {
            continue;
        };
        let labels = &live["metadata"]["labels"];
        let owned = labels[NAME_LABEL] == me.name.as_str()
            && labels[NAMESPACE_LABEL] == me.namespace.as_str();
        if owned && !disabled(&live, PRUNE_ANNOTATION, "disabled") {
            kube.delete(&r).await?;
        }
    }
    Ok(())
}

fn disabled(obj: &Value, key: &str, value: &str) -> bool {
    annotation(obj, key).is_some_and(|v| v.eq_ignore_ascii_case(value))
}

/// Applies the objects (Namespaces and CRDs first), garbage-collects the previous inventory;
/// returns the new inventory, or the failure message.
async fn apply_all(
    ctx: &SyncCtx,
    me: &ObjectRef,
    obj: &Value,
    objects: Vec<Value>,
) -> Result<Vec<ObjectRef>, String> {
    let kube = &ctx.kustomize;
    let (first, rest): (Vec<Value>, Vec<Value>) = objects.into_iter().partition(|o| {
        matches!(
            o["kind"].as_str(),
            Some("Namespace" | "CustomResourceDefinition")
        )
    });
    let mut inventory = Vec::new();
    for (stage, batch) in [first, rest].into_iter().enumerate() {
        for mut o in batch {
            let mut r = ObjectRef::of(&o).map_err(|e| e.to_string())?;
            if let Some(live) = kube.get(&r).await.map_err(|e| e.to_string())? {
                if r.namespace.is_empty() {
                    r.namespace = live["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                }
                if disabled(&live, SSA_ANNOTATION, "ignore") {
                    inventory.push(r);
                    continue;
                }
            }
            o["metadata"]["labels"][NAME_LABEL] = json!(me.name);
            o["metadata"]["labels"][NAMESPACE_LABEL] = json!(me.namespace);
            let applied = kube.apply(&o, "default").await.map_err(|e| e.to_string())?;
            let applied_ref = ObjectRef::of(&applied).unwrap_or(r);
            if stage == 0 && applied_ref.kind == "CustomResourceDefinition" {
                kube.wait_crd_established(&applied_ref.name, Duration::from_secs(30))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            inventory.push(applied_ref);
        }
    }
    inventory.sort();
    inventory.dedup();
    if obj["spec"]["prune"] == true {
        let keep: BTreeSet<String> = inventory.iter().map(ObjectRef::id).collect();
        for stale in read_inventory(obj)
            .into_iter()
            .filter(|r| !keep.contains(&r.id()))
        {
            if let Some(live) = kube.get(&stale).await.map_err(|e| e.to_string())?
                && !disabled(&live, PRUNE_ANNOTATION, "disabled")
            {
                kube.delete(&stale).await.map_err(|e| e.to_string())?;
            }
        }
    }
    Ok(inventory)
}

/// Cleans a repository-relative path: no leading `./` or `/`, `..` resolved.
fn normalize(path: &str) -> Result<String, String> {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("path '{path}' leaves the repository"));
                }
            }
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

fn kustomization_file<'a>(files: &'a BTreeMap<String, Vec<u8>>, dir: &str) -> Option<&'a [u8]> {
    KUSTOMIZATION_FILES
        .iter()
        .find_map(|f| files.get(&join(dir, f)).map(Vec::as_slice))
}

fn is_dir(files: &BTreeMap<String, Vec<u8>>, dir: &str) -> bool {
    dir.is_empty() || files.keys().any(|f| f.starts_with(&format!("{dir}/")))
}

/// The objects under `path`, or `(reason, message)`.
fn render(
    files: &BTreeMap<String, Vec<u8>>,
    path: &str,
) -> Result<Vec<Value>, (&'static str, String)> {
    let root = normalize(path).map_err(|m| ("ArtifactFailed", m))?;
    if !is_dir(files, &root) {
        return Err((
            "ArtifactFailed",
            format!("kustomization path not found: stat {path}: no such file or directory"),
        ));
    }
    render_dir(files, &root).map_err(|m| ("BuildFailed", m))
}

fn parse_documents(path: &str, content: &[u8]) -> Result<Vec<Value>, String> {
    let text = String::from_utf8_lossy(content);
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&text).map_err(|e| format!("failed to decode {path}: {e}"))?;
    Ok(docs.into_iter().filter(|d| d.is_object()).collect())
}

fn render_dir(files: &BTreeMap<String, Vec<u8>>, dir: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    if let Some(k) = kustomization_file(files, dir) {
        let index = parse_documents(&join(dir, "kustomization.yaml"), k)?;
        let resources: Vec<String> = index
            .first()
            .and_then(|i| i["resources"].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|r| r.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        for r in resources {
            let target = normalize(&join(dir, &r))?;
            if let Some(content) = files.get(&target) {
                out.extend(parse_documents(&target, content)?);
            } else if is_dir(files, &target) {
                out.extend(render_dir(files, &target)?);
            } else {
                return Err(format!(
                    "kustomize build failed: accumulating resources: '{target}' not found"
                ));
            }
        }
        return Ok(out);
    }
    // No kustomization.yaml: every manifest below, subdirectories with their own index as units.
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut units = BTreeSet::new();
    for (path, content) in files.range(prefix.clone()..) {
        let Some(rel) = path.strip_prefix(&prefix) else {
            break;
        };
        let mut unit = None;
        let segments: Vec<&str> = rel.split('/').collect();
        for depth in 1..segments.len() {
            let sub = join(dir, &segments[..depth].join("/"));
            if kustomization_file(files, &sub).is_some() {
                unit = Some(sub);
                break;
            }
        }
        match unit {
            Some(sub) if units.insert(sub.clone()) => {
                out.extend(render_dir(files, &sub)?);
            }
            Some(_) => {}
            None if path.ends_with(".yaml") || path.ends_with(".yml") => {
                out.extend(
                    parse_documents(path, content)?
                        .into_iter()
                        .filter(|d| d["apiVersion"].is_string() && d["kind"].is_string()),
                );
            }
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(entries: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        entries
            .iter()
            .map(|(p, c)| ((*p).to_owned(), c.as_bytes().to_vec()))
            .collect()
    }

    fn names(objects: &[Value]) -> Vec<String> {
        objects
            .iter()
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or(""),
                    o["metadata"]["name"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    fn cm(name: &str) -> String {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: apps\n")
    }

    #[test]
    fn renders_kustomization_lists_generated_directories_and_errors() {
        let tree = files(&[
            (
                "clusters/prod/flux-system/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- a.yaml\n- ../../shared\n",
            ),
            (
                "clusters/prod/flux-system/a.yaml",
                &format!("{}---\n{}", cm("a1"), cm("a2")),
            ),
            ("clusters/prod/flux-system/ignored.yaml", &cm("ignored")),
            ("clusters/shared/b.yaml", &cm("b")),
            ("clusters/prod/apps/c.yml", &cm("c")),
            ("clusters/prod/apps/notes.txt", "not yaml"),
            ("clusters/prod/apps/values.yaml", "replicas: 2\n"),
            ("README.md", "hi"),
        ]);
        let all = render(&tree, "./clusters/prod").unwrap();
        assert_eq!(
            names(&all),
            vec!["ConfigMap/c", "ConfigMap/a1", "ConfigMap/a2", "ConfigMap/b"]
        );
        assert_eq!(
            names(&render(&tree, "clusters/prod/flux-system").unwrap()),
            vec!["ConfigMap/a1", "ConfigMap/a2", "ConfigMap/b"]
        );
        assert_eq!(
            render(&tree, "clusters/dev").unwrap_err(),
            (
                "ArtifactFailed",
                "kustomization path not found: stat clusters/dev: no such file or directory"
                    .to_owned()
            )
        );
        let broken = files(&[("k/kustomization.yaml", "resources:\n- missing.yaml\n")]);
        assert_eq!(
            render(&broken, "k").unwrap_err(),
            (
                "BuildFailed",
                "kustomize build failed: accumulating resources: 'k/missing.yaml' not found"
                    .to_owned()
            )
        );
        assert_eq!(
            normalize("../x").unwrap_err(),
            "path '../x' leaves the repository"
        );
    }

    #[test]
    fn credentials_go_to_the_environment_not_the_arguments() {
        let dir = Scratch::new().unwrap();
        let data = BTreeMap::from([
            ("username".to_owned(), "bot".to_owned()),
            ("password".to_owned(), "s3cret".to_owned()),
        ]);
        let env = auth_env(&dir.0, "https://127.0.0.1/r.git", &data).unwrap();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("GIT_CONFIG_COUNT").as_deref(), Some("1"));
        assert_eq!(get("GIT_CONFIG_KEY_0").as_deref(), Some("http.extraHeader"));
        assert_eq!(
            get("GIT_CONFIG_VALUE_0").as_deref(),
            Some("Authorization: Basic Ym90OnMzY3JldA==")
        );
        let ssh = BTreeMap::from([("identity".to_owned(), "KEY".to_owned())]);
        assert_eq!(
            auth_env(&dir.0, "ssh://git@127.0.0.1:22/r.git", &ssh).unwrap_err(),
            "secret has no 'known_hosts' key for SSH host-key verification"
        );
    }
}
