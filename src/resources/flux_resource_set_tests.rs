//! Unit tests of the `flux_resource_set` resource.

use super::*;
use crate::framework::model::Value;
use crate::framework::value::RawValue;
use model::{HEALTHY, dynamic_value};
use pretty_assertions::assert_eq;

#[test]
fn import_ids_are_namespace_slash_name() {
    assert_eq!(
        parse_import_id("tenants/team-a"),
        Ok(("tenants".to_owned(), "team-a".to_owned()))
    );
    for bad in ["tenants", "/team-a", "tenants/", "a/b/c", ""] {
        let err = parse_import_id(bad).unwrap_err();
        assert_eq!(err.0[0].summary, "Invalid Import ID", "{bad:?}");
        assert!(err.0[0].detail.contains("<namespace>/<name>"), "{bad:?}");
    }
}

fn base() -> ResourceSetModel {
    ResourceSetModel {
        name: "tenants".to_owned().into(),
        namespace: "flux-system".to_owned().into(),
        inputs: dynamic_value(RawValue::Tuple(vec![RawValue::object([(
            "tenant",
            RawValue::string("a"),
        )])])),
        resources_template: "kind: A".to_owned().into(),
        wait: false.into(),
        suspend: false.into(),
        deletion_policy: "uninstall".to_owned().into(),
        ready: true.into(),
        inventory_status: HEALTHY.to_owned().into(),
        ..ResourceSetModel::default()
    }
}

#[test]
fn only_what_is_written_to_the_object_is_a_desired_change() {
    let prior = base();
    let cases: Vec<(&str, ResourceSetModel, bool)> = vec![
        ("same", base(), false),
        (
            "deletion policy is Terraform's",
            ResourceSetModel {
                deletion_policy: "orphan".to_owned().into(),
                ..base()
            },
            false,
        ),
        (
            "computed values are not desired",
            ResourceSetModel {
                ready: false.into(),
                inventory: Value::Unknown,
                ..base()
            },
            false,
        ),
        (
            "an input",
            ResourceSetModel {
                inputs: dynamic_value(RawValue::Tuple(vec![RawValue::object([(
                    "tenant",
                    RawValue::string("b"),
                )])])),
                ..base()
            },
            true,
        ),
        (
            "an unknown input",
            ResourceSetModel {
                inputs: Value::Unknown,
                ..base()
            },
            true,
        ),
        (
            "an annotation",
            ResourceSetModel {
                reconcile_every: "5m".to_owned().into(),
                ..base()
            },
            true,
        ),
        (
            "suspend",
            ResourceSetModel {
                suspend: true.into(),
                ..base()
            },
            true,
        ),
    ];
    for (name, planned, want) in cases {
        assert_eq!(desired_changed(&prior, &planned), want, "{name}");
    }
}

#[test]
fn not_ready_or_drifted_needs_a_reconcile() {
    assert!(!needs_reconcile(&base()));
    assert!(needs_reconcile(&ResourceSetModel {
        ready: false.into(),
        ..base()
    }));
    assert!(needs_reconcile(&ResourceSetModel {
        inventory_status: "Drifted: ConfigMap a/b missing".to_owned().into(),
        ..base()
    }));
}
