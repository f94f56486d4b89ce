//! Validation of `flux_resource_set` and `flux_resource_set_input_provider`: names, templates
//! and the objects they render, dependencies, input providers' fields as the CRDs enforce
//! them. Nothing here does I/O.
//!
//! Lives in `resources/`: may use `framework` and `flux`.

use crate::flux::validate as rule;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::framework::path::AttrPath;
use crate::resources::validation_checks::{Checks, reconcile_durations, timeouts};

/// `flux_resource_set`: names, the YAML template, timeouts.
pub fn resource_set(
    config: &crate::resources::flux_resource_set::model::ResourceSetModel,
) -> Diagnostics {
    let mut checks = Checks::new();
    checks.string(
        AttrPath::attr("name"),
        &config.name,
        "Invalid ResourceSet Name",
        rule::dns_subdomain,
    );
    checks.string(
        AttrPath::attr("namespace"),
        &config.namespace,
        "Invalid Namespace Name",
        rule::dns_label,
    );
    checks.string(
        AttrPath::attr("service_account_name"),
        &config.service_account_name,
        "Invalid Service Account Name",
        rule::dns_subdomain,
    );
    if let Some(template) = config.resources_template.as_known()
        && let Err(reason) = rule::resources_template(template)
    {
        checks.error_at(
            AttrPath::attr("resources_template"),
            "Invalid Resources Template",
            format!("resources_template {reason}."),
        );
    }
    for (i, dependency) in config
        .dependencies
        .as_known()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let path = AttrPath::attr("dependencies")
            .then_index(i as i64)
            .then_attr("name");
        checks.string(path, &dependency.name, "Invalid Dependency", |name| {
            if name.is_empty() {
                Err("must not be empty; name the object the ResourceSet depends on".into())
            } else {
                Ok(())
            }
        });
    }
    resource_set_objects(&mut checks, &config.resources);
    reconcile_durations(
        &mut checks,
        &[
            ("reconcile_every", &config.reconcile_every),
            ("reconcile_timeout", &config.reconcile_timeout),
        ],
    );
    for (i, source) in config
        .inputs_from
        .as_known()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let selector = source.selector.as_known();
        let expressions = selector.and_then(|s| s.match_expressions.as_known());
        for (j, expression) in expressions.into_iter().flatten().enumerate() {
            let path = AttrPath::attr("inputs_from")
                .then_index(i as i64)
                .then_attr("selector")
                .then_attr("match_expressions")
                .then_index(j as i64)
                .then_attr("operator");
            checks.string(path, &expression.operator, "Invalid Label Selector", |o| {
                rule::one_of(o, &["In", "NotIn", "Exists", "DoesNotExist"])
            });
        }
    }
    timeouts(&mut checks, &config.timeouts);
    checks.finish()
}

/// `flux_resource_set_input_provider`: names and timeouts (the rules of the spec are checked by
/// its model, [`crate::resources::flux_resource_set_input_provider::convert::validate_config`]).
pub fn input_provider(
    config: &crate::resources::flux_resource_set_input_provider::model::InputProviderModel,
) -> Diagnostics {
    let mut checks = Checks::new();
    checks.string(
        AttrPath::attr("name"),
        &config.name,
        "Invalid ResourceSetInputProvider Name",
        rule::dns_subdomain,
    );
    checks.string(
        AttrPath::attr("namespace"),
        &config.namespace,
        "Invalid Namespace Name",
        rule::dns_label,
    );
    checks.string(
        AttrPath::attr("service_account_name"),
        &config.service_account_name,
        "Invalid Service Account Name",
        rule::dns_subdomain,
    );
    timeouts(&mut checks, &config.timeouts);
    checks.finish()
}

/// Each element of `resources` (an object template) has a non-empty `apiVersion` and `kind`.
fn resource_set_objects(
    checks: &mut Checks,
    resources: &Value<crate::resources::flux_resource_set::model::Dynamic>,
) {
    use crate::framework::value::RawValue;
    let Some(crate::resources::flux_resource_set::model::Dynamic(raw)) = resources.as_known()
    else {
        return;
    };
    let (RawValue::List(items) | RawValue::Tuple(items) | RawValue::Set(items)) = raw else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let (RawValue::Object(fields) | RawValue::Map(fields)) = item else {
            continue;
        };
        for field in ["apiVersion", "kind"] {
            let present = match fields.get(field) {
                Some(RawValue::String(text)) => !text.is_empty(),
                Some(RawValue::Unknown(_)) => true,
                _ => false,
            };
            if !present {
                let path = AttrPath::attr("resources").then_index(i as i64);
                checks.error_at(
                    path.clone(),
                    "Invalid ResourceSet Object",
                    format!(
                        "{path} has no {field}: every object template needs apiVersion, kind \
                         and metadata (e.g. {{ apiVersion = \"v1\", kind = \"ConfigMap\", \
                         metadata = {{ name = \"...\" }} }})."
                    ),
                );
                break;
            }
        }
    }
}
