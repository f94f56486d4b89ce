//! In-process protocol tests: a real tonic server on a loopback port, a generated client, real
//! msgpack written out independently with `rmpv`, and whole responses compared. The provider is
//! a test [`ProviderService`] defined here whose behaviour follows Terraform's documented rules
//! (computed attributes unknown on create, write-only attributes null in every answer, a
//! requires-replace path for a changed `name`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pretty_assertions::assert_eq;
use rmpv::Value as Mp;
use tokio::sync::Notify;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::serve_with_incoming;
use crate::framework::diagnostics::{Diagnostic, Diagnostics, Severity};
use crate::framework::path::AttrPath;
use crate::framework::schema::{Attribute, AttributeType, Block, NestedBlock, Nesting, Schema};
use crate::framework::service::{
    ApplyRequest, ApplyResponse, ConfigureRequest, ImportRequest, ImportResponse, ImportedResource,
    PlanRequest, PlanResponse, ProviderSchemas, ProviderService, ReadDataRequest, ReadDataResponse,
    ReadRequest, ReadResponse, ServerCapabilities, UpgradeStateRequest, UpgradeStateResponse,
    ValidateRequest,
};
use crate::framework::value::{Number, RawValue, Type};
use crate::protocol::proto::plugin as gp;
use crate::protocol::proto::tfplugin6 as pb;

// ---------------------------------------------------------------------------------------------
// The test provider

fn attribute(name: &str, kind: AttributeType, description: &str) -> Attribute {
    Attribute {
        name: name.to_owned(),
        kind,
        description: description.to_owned(),
        required: false,
        optional: true,
        computed: false,
        sensitive: false,
        write_only: false,
        deprecated: None,
        default: None,
    }
}

fn thing_schema() -> Schema {
    Schema {
        version: 1,
        block: Block {
            attributes: vec![
                Attribute {
                    optional: false,
                    computed: true,
                    ..attribute("id", AttributeType::Plain(Type::String), "Identifier.")
                },
                Attribute {
                    optional: false,
                    required: true,
                    ..attribute("name", AttributeType::Plain(Type::String), "The **name**.")
                },
                Attribute {
                    sensitive: true,
                    write_only: true,
                    ..attribute("secret", AttributeType::Plain(Type::String), "A secret.")
                },
                attribute(
                    "settings",
                    AttributeType::Nested {
                        nesting: Nesting::Single,
                        attributes: vec![attribute("x", AttributeType::Plain(Type::String), "X.")],
                    },
                    "Settings.",
                ),
                attribute(
                    "data",
                    AttributeType::Plain(Type::Dynamic),
                    "Free-form data.",
                ),
                Attribute {
                    deprecated: Some("Use name.".to_owned()),
                    ..attribute("legacy", AttributeType::Plain(Type::String), "Old name.")
                },
            ],
            blocks: vec![NestedBlock {
                type_name: "timeouts".to_owned(),
                nesting: Nesting::Single,
                block: Block {
                    attributes: vec![attribute(
                        "create",
                        AttributeType::Plain(Type::String),
                        "Create timeout.",
                    )],
                    description: "Timeouts.".to_owned(),
                    ..Block::default()
                },
                min_items: 0,
                max_items: 1,
            }],
            description: "A thing.".to_owned(),
            deprecated: None,
        },
    }
}

fn simple_schema(description: &str, attributes: Vec<Attribute>) -> Schema {
    Schema {
        version: 0,
        block: Block {
            attributes,
            description: description.to_owned(),
            ..Block::default()
        },
    }
}

fn schemas() -> ProviderSchemas {
    let label = attribute("label", AttributeType::Plain(Type::String), "Label.");
    ProviderSchemas {
        provider: simple_schema("The provider.", vec![label.clone()]),
        resources: BTreeMap::from([
            ("test_thing".to_owned(), thing_schema()),
            (
                "test_slow".to_owned(),
                simple_schema("Slow.", vec![label.clone()]),
            ),
        ]),
        data_sources: BTreeMap::from([(
            "test_info".to_owned(),
            simple_schema(
                "Info.",
                vec![
                    label,
                    Attribute {
                        optional: false,
                        computed: true,
                        ..attribute("length", AttributeType::Plain(Type::Number), "Length.")
                    },
                ],
            ),
        )]),
        capabilities: ServerCapabilities {
            plan_destroy: true,
            get_provider_schema_optional: false,
            move_resource_state: false,
        },
    }
}

struct TestService {
    schemas: ProviderSchemas,
    stop: CancellationToken,
    slow_apply_started: Arc<Notify>,
}

impl TestService {
    fn new() -> Self {
        Self {
            schemas: schemas(),
            stop: CancellationToken::new(),
            slow_apply_started: Arc::new(Notify::new()),
        }
    }
}

fn attr<'v>(value: &'v RawValue, name: &str) -> &'v RawValue {
    match value {
        RawValue::Object(attrs) => attrs.get(name).unwrap_or(&RawValue::Null),
        _ => &RawValue::Null,
    }
}

fn with_attr(value: &RawValue, name: &str, new: RawValue) -> RawValue {
    let mut value = value.clone();
    if let RawValue::Object(attrs) = &mut value {
        attrs.insert(name.to_owned(), new);
    }
    value
}

fn text(s: &str) -> RawValue {
    RawValue::String(s.to_owned())
}

#[async_trait]
impl ProviderService for TestService {
    fn schemas(&self) -> &ProviderSchemas {
        &self.schemas
    }

    async fn validate_provider_config(&self, config: RawValue) -> Diagnostics {
        match attr(&config, "label") {
            RawValue::String(label) if label.is_empty() => Diagnostics::from_error_at(
                AttrPath::attr("label"),
                "Empty Label",
                "Set label to a non-empty string.",
            ),
            _ => Diagnostics::new(),
        }
    }

    async fn configure_provider(&self, request: ConfigureRequest) -> Diagnostics {
        let mut diagnostics = Diagnostics::new();
        if matches!(attr(&request.config, "label"), RawValue::Unknown(_)) {
            diagnostics.warning_at(
                AttrPath::attr("label"),
                "Label Unknown",
                format!("Configured by Terraform {}.", request.terraform_version),
            );
        }
        diagnostics
    }

    async fn validate_resource_config(&self, request: ValidateRequest) -> Diagnostics {
        let mut diagnostics = Diagnostics::new();
        if attr(&request.config, "name") == &text("bad") {
            diagnostics.error_at(
                AttrPath::attr("name"),
                "Invalid Name",
                "\"bad\" is not a valid name.",
            );
        }
        if let RawValue::Object(settings) = attr(&request.config, "settings")
            && settings.get("x") == Some(&text(""))
        {
            diagnostics.warning_at(
                AttrPath::attr("settings").then_attr("x"),
                "Empty X",
                "x is empty.",
            );
        }
        if !request.client_capabilities.write_only_attributes_allowed
            && !matches!(attr(&request.config, "secret"), RawValue::Null)
        {
            diagnostics.error_at(
                AttrPath::attr("secret"),
                "WriteOnly Attribute Not Allowed",
                "secret needs Terraform 1.11 or later.",
            );
        }
        diagnostics
    }

    async fn validate_data_source_config(&self, _request: ValidateRequest) -> Diagnostics {
        Diagnostics::new()
    }

    async fn upgrade_resource_state(&self, request: UpgradeStateRequest) -> UpgradeStateResponse {
        let json: serde_json::Value =
            serde_json::from_slice(&request.raw_state_json).unwrap_or_default();
        let name_key = if request.version == 0 {
            "title"
        } else {
            "name"
        };
        let field = |key: &str| {
            json.get(key)
                .and_then(|v| v.as_str())
                .map_or(RawValue::Null, text)
        };
        UpgradeStateResponse {
            upgraded_state: RawValue::Object(BTreeMap::from([
                ("id".to_owned(), field("id")),
                ("name".to_owned(), field(name_key)),
            ])),
            diagnostics: Diagnostics::new(),
        }
    }

    async fn read_resource(&self, request: ReadRequest) -> ReadResponse {
        if attr(&request.current_state, "name") == &text("corrupt") {
            // A provider bug: an attribute the schema does not have.
            return ReadResponse {
                new_state: with_attr(&request.current_state, "bogus", text("x")),
                private: Vec::new(),
                diagnostics: Diagnostics::new(),
            };
        }
        let gone = attr(&request.current_state, "name") == &text("gone");
        ReadResponse {
            new_state: if gone {
                RawValue::Null
            } else {
                request.current_state
            },
            private: request.private,
            diagnostics: Diagnostics::new(),
        }
    }

    async fn plan_resource_change(&self, request: PlanRequest) -> PlanResponse {
        if request.proposed_new_state == RawValue::Null {
            return PlanResponse::default();
        }
        let mut planned = with_attr(&request.proposed_new_state, "secret", RawValue::Null);
        if attr(&planned, "id") == &RawValue::Null {
            planned = with_attr(&planned, "id", RawValue::Unknown(Default::default()));
        }
        let mut requires_replace = Vec::new();
        if request.prior_state != RawValue::Null
            && attr(&request.prior_state, "name") != attr(&request.proposed_new_state, "name")
        {
            requires_replace.push(AttrPath::attr("name"));
        }
        let secret_len = match attr(&request.config, "secret") {
            RawValue::String(secret) => secret.len(),
            _ => 0,
        };
        PlanResponse {
            planned_state: planned,
            requires_replace,
            planned_private: format!("secret-len={secret_len}").into_bytes(),
            diagnostics: Diagnostics::new(),
        }
    }

    async fn apply_resource_change(&self, request: ApplyRequest) -> ApplyResponse {
        if request.type_name == "test_slow" {
            self.slow_apply_started.notify_one();
            self.stop.cancelled().await;
            return ApplyResponse {
                new_state: request.planned_state,
                private: Vec::new(),
                diagnostics: Diagnostics::from_error(
                    "Apply Cancelled",
                    "Terraform asked the provider to stop.",
                ),
            };
        }
        if request.planned_state == RawValue::Null {
            return ApplyResponse::default();
        }
        let name = match attr(&request.planned_state, "name") {
            RawValue::String(name) => name.clone(),
            _ => String::new(),
        };
        let new_state = with_attr(&request.planned_state, "id", text(&format!("thing-{name}")));
        ApplyResponse {
            new_state: with_attr(&new_state, "secret", RawValue::Null),
            private: request.planned_private,
            diagnostics: Diagnostics::new(),
        }
    }

    async fn import_resource_state(&self, request: ImportRequest) -> ImportResponse {
        ImportResponse {
            imported: vec![ImportedResource {
                type_name: request.type_name,
                state: RawValue::Object(BTreeMap::from([
                    ("id".to_owned(), text(&request.id)),
                    ("name".to_owned(), text(&request.id)),
                ])),
                private: b"imported".to_vec(),
            }],
            diagnostics: Diagnostics::new(),
        }
    }

    async fn read_data_source(&self, request: ReadDataRequest) -> ReadDataResponse {
        let length = match attr(&request.config, "label") {
            RawValue::String(label) => i64::try_from(label.len()).unwrap_or(0),
            _ => 0,
        };
        ReadDataResponse {
            state: with_attr(
                &request.config,
                "length",
                RawValue::Number(Number::Int(length)),
            ),
            diagnostics: Diagnostics::new(),
        }
    }

    fn stop(&self) {
        self.stop.cancel();
    }
}

// ---------------------------------------------------------------------------------------------
// Harness

struct Harness {
    client: pb::provider_client::ProviderClient<Channel>,
    channel: Channel,
    service: Arc<TestService>,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<Result<(), super::ServerError>>,
    /// Held for the test's duration: see [`SERIAL`].
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

/// The server tests run one at a time: the logging test installs a scoped subscriber, and
/// another test registering the server's callsites on another thread at that moment can leave
/// them cached as uninteresting (spans without their fields in the captured log).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start() -> Harness {
    let serial = SERIAL.lock().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = Arc::new(TestService::new());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve_with_incoming(
        Arc::clone(&service) as Arc<dyn ProviderService>,
        TcpListenerStream::new(listener),
        shutdown.clone(),
    ));
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Harness {
        client: pb::provider_client::ProviderClient::new(channel.clone()),
        channel,
        service,
        shutdown,
        server,
        _serial: serial,
    }
}

fn mp(value: Mp) -> Option<pb::DynamicValue> {
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &value).unwrap();
    Some(pb::DynamicValue {
        msgpack: bytes,
        json: Vec::new(),
    })
}

fn mp_map(entries: Vec<(&str, Mp)>) -> Mp {
    Mp::Map(entries.into_iter().map(|(k, v)| (Mp::from(k), v)).collect())
}

fn unknown() -> Mp {
    Mp::Ext(0, vec![0])
}

/// A `test_thing` object in wire form (attributes in name order, as the encoder writes them).
fn thing(id: Mp, name: &str, secret: Mp, data: Mp) -> Mp {
    mp_map(vec![
        ("data", data),
        ("id", id),
        ("legacy", Mp::Nil),
        ("name", Mp::from(name)),
        ("secret", secret),
        ("settings", Mp::Nil),
        ("timeouts", Mp::Nil),
    ])
}

fn dynamic_object() -> Mp {
    Mp::Array(vec![
        Mp::Binary(br#"["object",{"k":"string"}]"#.to_vec()),
        mp_map(vec![("k", Mp::from("v"))]),
    ])
}

fn error_at(attribute: &str, summary: &str, detail: &str) -> pb::Diagnostic {
    pb::Diagnostic {
        severity: pb::diagnostic::Severity::Error as i32,
        summary: summary.to_owned(),
        detail: detail.to_owned(),
        attribute: Some(path(&[attribute])),
    }
}

fn path(names: &[&str]) -> pb::AttributePath {
    pb::AttributePath {
        steps: names
            .iter()
            .map(|name| pb::attribute_path::Step {
                selector: Some(pb::attribute_path::step::Selector::AttributeName(
                    (*name).to_owned(),
                )),
            })
            .collect(),
    }
}

fn write_only_allowed() -> Option<pb::ClientCapabilities> {
    Some(pb::ClientCapabilities {
        deferral_allowed: false,
        write_only_attributes_allowed: true,
    })
}

// ---------------------------------------------------------------------------------------------
// Schema and metadata

fn pb_attribute(name: &str, ty: &str, description: &str) -> pb::schema::Attribute {
    pb::schema::Attribute {
        name: name.to_owned(),
        r#type: ty.as_bytes().to_vec(),
        nested_type: None,
        description: description.to_owned(),
        required: false,
        optional: true,
        computed: false,
        sensitive: false,
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: false,
        write_only: false,
    }
}

fn pb_simple(description: &str, attributes: Vec<pb::schema::Attribute>) -> pb::Schema {
    pb::Schema {
        version: 0,
        block: Some(pb::schema::Block {
            version: 0,
            attributes,
            block_types: vec![],
            description: description.to_owned(),
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: false,
        }),
    }
}

#[tokio::test]
async fn get_provider_schema_has_the_whole_shape() {
    let mut h = start().await;
    let response = h
        .client
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    let label = pb_attribute("label", "\"string\"", "Label.");
    let thing = pb::Schema {
        version: 1,
        block: Some(pb::schema::Block {
            version: 0,
            attributes: vec![
                pb::schema::Attribute {
                    optional: false,
                    computed: true,
                    ..pb_attribute("id", "\"string\"", "Identifier.")
                },
                pb::schema::Attribute {
                    optional: false,
                    required: true,
                    ..pb_attribute("name", "\"string\"", "The **name**.")
                },
                pb::schema::Attribute {
                    sensitive: true,
                    write_only: true,
                    ..pb_attribute("secret", "\"string\"", "A secret.")
                },
                pb::schema::Attribute {
                    // Nested attributes: `nested_type` set, `type` empty.
                    nested_type: Some(pb::schema::Object {
                        attributes: vec![pb_attribute("x", "\"string\"", "X.")],
                        nesting: pb::schema::object::NestingMode::Single as i32,
                        ..Default::default()
                    }),
                    ..pb_attribute("settings", "", "Settings.")
                },
                pb_attribute("data", "\"dynamic\"", "Free-form data."),
                pb::schema::Attribute {
                    deprecated: true,
                    ..pb_attribute("legacy", "\"string\"", "Old name.")
                },
            ],
            block_types: vec![pb::schema::NestedBlock {
                type_name: "timeouts".to_owned(),
                block: Some(pb::schema::Block {
                    version: 0,
                    attributes: vec![pb_attribute("create", "\"string\"", "Create timeout.")],
                    block_types: vec![],
                    description: "Timeouts.".to_owned(),
                    description_kind: pb::StringKind::Markdown as i32,
                    deprecated: false,
                }),
                nesting: pb::schema::nested_block::NestingMode::Single as i32,
                min_items: 0,
                max_items: 1,
            }],
            description: "A thing.".to_owned(),
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: false,
        }),
    };
    let expected = pb::get_provider_schema::Response {
        provider: Some(pb_simple("The provider.", vec![label.clone()])),
        resource_schemas: [
            (
                "test_slow".to_owned(),
                pb_simple("Slow.", vec![label.clone()]),
            ),
            ("test_thing".to_owned(), thing),
        ]
        .into_iter()
        .collect(),
        data_source_schemas: [(
            "test_info".to_owned(),
            pb_simple(
                "Info.",
                vec![
                    label,
                    pb::schema::Attribute {
                        optional: false,
                        computed: true,
                        ..pb_attribute("length", "\"number\"", "Length.")
                    },
                ],
            ),
        )]
        .into_iter()
        .collect(),
        functions: Default::default(),
        ephemeral_resource_schemas: Default::default(),
        diagnostics: vec![],
        provider_meta: None,
        server_capabilities: Some(pb::ServerCapabilities {
            plan_destroy: true,
            get_provider_schema_optional: false,
            move_resource_state: false,
        }),
    };
    assert_eq!(response, expected);
}

#[tokio::test]
async fn metadata_and_optional_rpcs_have_empty_answers() {
    let mut h = start().await;
    let metadata = h
        .client
        .get_metadata(pb::get_metadata::Request {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        metadata,
        pb::get_metadata::Response {
            server_capabilities: Some(pb::ServerCapabilities {
                plan_destroy: true,
                get_provider_schema_optional: false,
                move_resource_state: false,
            }),
            diagnostics: vec![],
            data_sources: vec![pb::get_metadata::DataSourceMetadata {
                type_name: "test_info".to_owned()
            }],
            resources: vec![
                pb::get_metadata::ResourceMetadata {
                    type_name: "test_slow".to_owned()
                },
                pb::get_metadata::ResourceMetadata {
                    type_name: "test_thing".to_owned()
                },
            ],
            functions: vec![],
            ephemeral_resources: vec![],
        }
    );
    let identity = h
        .client
        .get_resource_identity_schemas(pb::get_resource_identity_schemas::Request {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        identity,
        pb::get_resource_identity_schemas::Response::default()
    );
    let functions = h
        .client
        .get_functions(pb::get_functions::Request {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(functions, pb::get_functions::Response::default());
    let ephemeral = h
        .client
        .validate_ephemeral_resource_config(pb::validate_ephemeral_resource_config::Request {
            type_name: "test_nope".to_owned(),
            config: mp(Mp::Nil),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ephemeral.diagnostics.len(), 1);
    assert_eq!(
        ephemeral.diagnostics[0].summary,
        "Unknown ephemeral resource type"
    );
    let health = tonic_health::pb::health_client::HealthClient::new(h.channel.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: "plugin".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

// ---------------------------------------------------------------------------------------------
// Validation and configuration

#[tokio::test]
async fn validation_diagnostics_carry_attribute_paths() {
    let mut h = start().await;
    let config = thing(Mp::Nil, "bad", Mp::from("s"), Mp::Nil);
    let response = h
        .client
        .validate_resource_config(pb::validate_resource_config::Request {
            type_name: "test_thing".to_owned(),
            config: mp(config),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response,
        pb::validate_resource_config::Response {
            diagnostics: vec![
                error_at("name", "Invalid Name", "\"bad\" is not a valid name."),
                error_at(
                    "secret",
                    "WriteOnly Attribute Not Allowed",
                    "secret needs Terraform 1.11 or later."
                ),
            ],
        }
    );

    // JSON input (msgpack empty) with a nested attribute; a warning at a nested path.
    let json_config = br#"{"name": "ok", "settings": {"x": ""}}"#;
    let response = h
        .client
        .validate_resource_config(pb::validate_resource_config::Request {
            type_name: "test_thing".to_owned(),
            config: Some(pb::DynamicValue {
                msgpack: vec![],
                json: json_config.to_vec(),
            }),
            client_capabilities: write_only_allowed(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response,
        pb::validate_resource_config::Response {
            diagnostics: vec![pb::Diagnostic {
                severity: pb::diagnostic::Severity::Warning as i32,
                summary: "Empty X".to_owned(),
                detail: "x is empty.".to_owned(),
                attribute: Some(path(&["settings", "x"])),
            }],
        }
    );

    let response = h
        .client
        .validate_provider_config(pb::validate_provider_config::Request {
            config: mp(mp_map(vec![("label", Mp::from(""))])),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.diagnostics,
        vec![error_at(
            "label",
            "Empty Label",
            "Set label to a non-empty string."
        )]
    );

    let response = h
        .client
        .configure_provider(pb::configure_provider::Request {
            terraform_version: "1.11.4".to_owned(),
            config: mp(mp_map(vec![("label", unknown())])),
            client_capabilities: write_only_allowed(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.diagnostics,
        vec![pb::Diagnostic {
            severity: pb::diagnostic::Severity::Warning as i32,
            summary: "Label Unknown".to_owned(),
            detail: "Configured by Terraform 1.11.4.".to_owned(),
            attribute: Some(path(&["label"])),
        }]
    );
}

#[tokio::test]
async fn unknown_types_are_diagnostics_and_undecodable_values_are_protocol_errors() {
    let mut h = start().await;
    let response = h
        .client
        .read_resource(pb::read_resource::Request {
            type_name: "test_nope".to_owned(),
            current_state: mp(Mp::Nil),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.diagnostics.len(), 1);
    assert_eq!(
        response.diagnostics[0].summary,
        "Unknown managed resource type"
    );

    let status = h
        .client
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "test_thing".to_owned(),
            prior_state: mp(Mp::Nil),
            proposed_new_state: mp(mp_map(vec![("nope", Mp::Nil)])),
            config: mp(Mp::Nil),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "decoding proposed new state: at (root): unexpected attribute \"nope\""
    );
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

#[tokio::test]
async fn plan_create_marks_computed_unknown_and_never_echoes_write_only_values() {
    let mut h = start().await;
    let config = thing(Mp::Nil, "a", Mp::from("s3cr3t"), dynamic_object());
    let proposed = thing(Mp::Nil, "a", Mp::from("s3cr3t"), dynamic_object());
    let response = h
        .client
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "test_thing".to_owned(),
            prior_state: mp(Mp::Nil),
            proposed_new_state: mp(proposed),
            config: mp(config),
            prior_private: vec![],
            provider_meta: None,
            client_capabilities: write_only_allowed(),
            prior_identity: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response,
        pb::plan_resource_change::Response {
            planned_state: mp(thing(unknown(), "a", Mp::Nil, dynamic_object())),
            requires_replace: vec![],
            planned_private: b"secret-len=6".to_vec(),
            diagnostics: vec![],
            legacy_type_system: false,
            deferred: None,
            planned_identity: None,
        }
    );
}

#[tokio::test]
async fn plan_update_returns_requires_replace_paths() {
    let mut h = start().await;
    let prior = thing(Mp::from("thing-a"), "a", Mp::Nil, Mp::Nil);
    let proposed = thing(Mp::from("thing-a"), "b", Mp::Nil, Mp::Nil);
    let response = h
        .client
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "test_thing".to_owned(),
            prior_state: mp(prior),
            proposed_new_state: mp(proposed.clone()),
            config: mp(thing(Mp::Nil, "b", Mp::Nil, Mp::Nil)),
            prior_private: b"p".to_vec(),
            client_capabilities: write_only_allowed(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response,
        pb::plan_resource_change::Response {
            planned_state: mp(proposed),
            requires_replace: vec![path(&["name"])],
            planned_private: b"secret-len=0".to_vec(),
            ..Default::default()
        }
    );

    // Destroy plan: null proposed state, null planned state.
    let response = h
        .client
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "test_thing".to_owned(),
            prior_state: mp(thing(Mp::from("thing-a"), "a", Mp::Nil, Mp::Nil)),
            proposed_new_state: mp(Mp::Nil),
            config: mp(Mp::Nil),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response,
        pb::plan_resource_change::Response {
            planned_state: mp(Mp::Nil),
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn apply_create_fills_computed_values_and_nulls_write_only() {
    let mut h = start().await;
    let response = h
        .client
        .apply_resource_change(pb::apply_resource_change::Request {
            type_name: "test_thing".to_owned(),
            prior_state: mp(Mp::Nil),
            planned_state: mp(thing(unknown(), "a", Mp::Nil, dynamic_object())),
            config: mp(thing(Mp::Nil, "a", Mp::from("s3cr3t"), dynamic_object())),
            planned_private: b"secret-len=6".to_vec(),
            provider_meta: None,
            planned_identity: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response,
        pb::apply_resource_change::Response {
            new_state: mp(thing(Mp::from("thing-a"), "a", Mp::Nil, dynamic_object())),
            private: b"secret-len=6".to_vec(),
            diagnostics: vec![],
            legacy_type_system: false,
            new_identity: None,
        }
    );
}

#[tokio::test]
async fn read_passes_private_state_and_reports_deletion_as_null() {
    let mut h = start().await;
    let state = thing(Mp::from("thing-a"), "a", Mp::Nil, dynamic_object());
    let response = h
        .client
        .read_resource(pb::read_resource::Request {
            type_name: "test_thing".to_owned(),
            current_state: mp(state.clone()),
            private: b"\x00\xffopaque".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response,
        pb::read_resource::Response {
            new_state: mp(state),
            diagnostics: vec![],
            private: b"\x00\xffopaque".to_vec(),
            deferred: None,
            new_identity: None,
        }
    );

    let response = h
        .client
        .read_resource(pb::read_resource::Request {
            type_name: "test_thing".to_owned(),
            current_state: mp(thing(Mp::from("thing-g"), "gone", Mp::Nil, Mp::Nil)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response,
        pb::read_resource::Response {
            new_state: mp(Mp::Nil),
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn a_response_value_that_does_not_fit_the_schema_is_an_error_diagnostic() {
    let mut h = start().await;
    let response = h
        .client
        .read_resource(pb::read_resource::Request {
            type_name: "test_thing".to_owned(),
            current_state: mp(thing(Mp::from("thing-c"), "corrupt", Mp::Nil, Mp::Nil)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response,
        pb::read_resource::Response {
            new_state: None,
            diagnostics: vec![pb::Diagnostic {
                severity: pb::diagnostic::Severity::Error as i32,
                summary: "Provider Produced an Invalid Value".to_owned(),
                detail: "The provider's new state does not match its schema: at (root): \
                         unexpected attribute \"bogus\". This is a bug in the provider; please \
                         report it."
                    .to_owned(),
                attribute: None,
            }],
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn import_returns_the_imported_objects() {
    let mut h = start().await;
    let response = h
        .client
        .import_resource_state(pb::import_resource_state::Request {
            type_name: "test_thing".to_owned(),
            id: "x1".to_owned(),
            client_capabilities: None,
            identity: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response,
        pb::import_resource_state::Response {
            imported_resources: vec![pb::import_resource_state::ImportedResource {
                type_name: "test_thing".to_owned(),
                state: mp(thing(Mp::from("x1"), "x1", Mp::Nil, Mp::Nil)),
                private: b"imported".to_vec(),
                identity: None,
            }],
            diagnostics: vec![],
            deferred: None,
        }
    );
}

#[tokio::test]
async fn upgrade_passes_raw_json_and_answers_msgpack() {
    let mut h = start().await;
    for (version, json) in [
        (0, r#"{"id":"i-1","title":"old"}"#),
        (1, r#"{"id":"i-1","name":"old"}"#),
    ] {
        let response = h
            .client
            .upgrade_resource_state(pb::upgrade_resource_state::Request {
                type_name: "test_thing".to_owned(),
                version,
                raw_state: Some(pb::RawState {
                    json: json.as_bytes().to_vec(),
                    flatmap: Default::default(),
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            response,
            pb::upgrade_resource_state::Response {
                upgraded_state: mp(thing(Mp::from("i-1"), "old", Mp::Nil, Mp::Nil)),
                diagnostics: vec![],
            },
            "version {version}"
        );
    }
    let flatmap = h
        .client
        .upgrade_resource_state(pb::upgrade_resource_state::Request {
            type_name: "test_thing".to_owned(),
            version: 0,
            raw_state: Some(pb::RawState {
                json: vec![],
                flatmap: [("id".to_owned(), "i".to_owned())].into_iter().collect(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(flatmap.upgraded_state, None);
    assert_eq!(flatmap.diagnostics[0].summary, "Unsupported State Format");
}

#[tokio::test]
async fn read_data_source_encodes_the_result() {
    let mut h = start().await;
    let response = h
        .client
        .read_data_source(pb::read_data_source::Request {
            type_name: "test_info".to_owned(),
            config: mp(mp_map(vec![
                ("label", Mp::from("abcd")),
                ("length", Mp::Nil),
            ])),
            provider_meta: None,
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response,
        pb::read_data_source::Response {
            state: mp(mp_map(vec![
                ("label", Mp::from("abcd")),
                ("length", Mp::from(4))
            ])),
            diagnostics: vec![],
            deferred: None,
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Stopping

#[tokio::test]
async fn stop_provider_cancels_a_waiting_apply_and_keeps_serving() {
    let h = start().await;
    let mut apply_client = h.client.clone();
    let started = h.service.slow_apply_started.notified();
    let apply = tokio::spawn(async move {
        apply_client
            .apply_resource_change(pb::apply_resource_change::Request {
                type_name: "test_slow".to_owned(),
                prior_state: mp(Mp::Nil),
                planned_state: mp(mp_map(vec![("label", Mp::from("half"))])),
                config: mp(mp_map(vec![("label", Mp::from("half"))])),
                ..Default::default()
            })
            .await
    });
    tokio::time::timeout(Duration::from_secs(5), started)
        .await
        .expect("the slow apply starts");
    assert!(!apply.is_finished(), "the apply waits for cancellation");

    let stopped_at = Instant::now();
    let stop = h
        .client
        .clone()
        .stop_provider(pb::stop_provider::Request {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        stop,
        pb::stop_provider::Response {
            error: String::new()
        }
    );
    let applied = tokio::time::timeout(Duration::from_secs(2), apply)
        .await
        .expect("the apply returns promptly after StopProvider")
        .unwrap()
        .unwrap()
        .into_inner();
    assert!(stopped_at.elapsed() < Duration::from_secs(2));
    assert_eq!(
        applied,
        pb::apply_resource_change::Response {
            new_state: mp(mp_map(vec![("label", Mp::from("half"))])),
            diagnostics: vec![pb::Diagnostic {
                severity: pb::diagnostic::Severity::Error as i32,
                summary: "Apply Cancelled".to_owned(),
                detail: "Terraform asked the provider to stop.".to_owned(),
                attribute: None,
            }],
            ..Default::default()
        }
    );

    // StopProvider does not stop the server.
    let metadata = h
        .client
        .clone()
        .get_metadata(pb::get_metadata::Request {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata.resources.len(), 2);
    assert!(!h.server.is_finished());
}

#[tokio::test]
async fn go_plugin_shutdown_stops_the_server() {
    let h = start().await;
    let mut controller = gp::grpc_controller_client::GrpcControllerClient::new(h.channel.clone());
    controller.shutdown(gp::Empty {}).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(1), h.server)
        .await
        .expect("the server stops within a second of Shutdown")
        .unwrap();
    assert!(result.is_ok());
    assert!(
        h.service.stop.is_cancelled(),
        "Shutdown also stops in-flight work"
    );
    assert!(
        h.shutdown.is_cancelled(),
        "Shutdown cancels the server's shutdown token"
    );
}

#[test]
fn diagnostics_convert_with_and_without_paths() {
    let diagnostics = Diagnostics(vec![
        Diagnostic {
            severity: Severity::Warning,
            summary: "W".to_owned(),
            detail: "w".to_owned(),
            path: Some(AttrPath::attr("a").then_key("k").then_index(2)),
        },
        Diagnostic {
            severity: Severity::Error,
            summary: "E".to_owned(),
            detail: "e".to_owned(),
            path: Some(AttrPath::root()),
        },
        Diagnostic {
            severity: Severity::Error,
            summary: "E2".to_owned(),
            detail: "e2".to_owned(),
            path: Some(AttrPath::attr("b").then_attr("c")),
        },
    ]);
    use pb::attribute_path::step::Selector;
    let step = |selector| pb::attribute_path::Step {
        selector: Some(selector),
    };
    let expected_path = pb::AttributePath {
        steps: vec![
            step(Selector::AttributeName("a".to_owned())),
            step(Selector::ElementKeyString("k".to_owned())),
            step(Selector::ElementKeyInt(2)),
        ],
    };
    assert_eq!(
        crate::protocol::convert::diagnostics_to_proto(&diagnostics),
        vec![
            pb::Diagnostic {
                severity: pb::diagnostic::Severity::Warning as i32,
                summary: "W".to_owned(),
                // A warning keeps its detail as written.
                detail: "w".to_owned(),
                attribute: Some(expected_path.clone()),
            },
            pb::Diagnostic {
                severity: pb::diagnostic::Severity::Error as i32,
                summary: "E".to_owned(),
                detail: "e".to_owned(),
                attribute: None,
            },
            // An error whose detail does not name its attribute gets the path first.
            pb::Diagnostic {
                severity: pb::diagnostic::Severity::Error as i32,
                summary: "E2".to_owned(),
                detail: "b.c: e2".to_owned(),
                attribute: Some(pb::AttributePath {
                    steps: vec![
                        step(Selector::AttributeName("b".to_owned())),
                        step(Selector::AttributeName("c".to_owned())),
                    ],
                }),
            },
        ]
    );
    assert_eq!(
        crate::protocol::convert::attr_path_from_proto(&expected_path),
        AttrPath::attr("a").then_key("k").then_index(2)
    );
}

// ---------------------------------------------------------------------------------------------
// Logging

#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_name_the_rpc_and_type_but_never_values() {
    use tracing_subscriber::layer::SubscriberExt;
    let buffer = LogBuffer::default();
    let subscriber = tracing_subscriber::registry()
        .with(crate::logging::layer(tracing::Level::TRACE, buffer.clone()));
    // The server first: it holds the other server tests off (see `SERIAL`) while the
    // subscriber is in place.
    let mut h = start().await;
    let _default = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let config = thing(Mp::Nil, "visible-name", Mp::from("s3cr3t-value"), Mp::Nil);
    h.client
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "test_thing".to_owned(),
            prior_state: mp(Mp::Nil),
            proposed_new_state: mp(config.clone()),
            config: mp(config),
            client_capabilities: write_only_allowed(),
            ..Default::default()
        })
        .await
        .unwrap();

    let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = output
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let rpc_lines: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|line| line["tf_rpc"] == "PlanResourceChange")
        .collect();
    assert!(
        rpc_lines.iter().any(|line| line["@message"] == "received"
            && line["tf_type"] == "test_thing"
            && line["@level"] == "debug"),
        "{output}"
    );
    assert!(
        rpc_lines
            .iter()
            .any(|line| line["@message"] == "decoded" && line["shape"].is_string()),
        "{output}"
    );
    assert!(
        !output.contains("s3cr3t-value"),
        "a value was logged:\n{output}"
    );
    assert!(
        !output.contains("visible-name"),
        "a value was logged:\n{output}"
    );
}
