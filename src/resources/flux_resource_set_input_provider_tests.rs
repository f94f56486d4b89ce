//! Unit tests of the `flux_resource_set_input_provider` resource.

use super::*;
use crate::framework::value::RawValue;
use crate::resources::flux_resource_set::model::dynamic_value;
use pretty_assertions::assert_eq;

fn base() -> InputProviderModel {
    InputProviderModel {
        name: Value::Known("team".into()),
        namespace: Value::Known("apps".into()),
        provider_type: Value::Known("Static".into()),
        default_values: dynamic_value(RawValue::object([("tenant", RawValue::string("a"))])),
        suspend: Value::Known(false),
        deletion_policy: Value::Known("delete".into()),
        ready: Value::Known(true),
        exported_inputs: dynamic_value(RawValue::Tuple(vec![])),
        last_exported_revision: Value::Known("sha256:1".into()),
        ..InputProviderModel::default()
    }
}

#[test]
fn only_a_desired_change_makes_the_exports_unknown() {
    let prior = base();
    let mut same = base();
    plan_computed(&mut same, Some(&prior));
    assert_eq!(same.exported_inputs, prior.exported_inputs);
    assert_eq!(same.id, Value::Known("apps/team".into()));
    let mut policy = InputProviderModel {
        deletion_policy: Value::Known("orphan".into()),
        ..base()
    };
    plan_computed(&mut policy, Some(&prior));
    assert_eq!(policy.last_exported_revision, prior.last_exported_revision);
    let mut changed = InputProviderModel {
        default_values: dynamic_value(RawValue::object([("tenant", RawValue::string("b"))])),
        ..base()
    };
    plan_computed(&mut changed, Some(&prior));
    assert_eq!(changed.exported_inputs, Value::Unknown);
    assert_eq!(changed.last_exported_revision, Value::Unknown);
    assert_eq!(changed.ready, Value::Known(true));
    let mut suspended = InputProviderModel {
        suspend: Value::Known(true),
        ..base()
    };
    plan_computed(&mut suspended, Some(&prior));
    assert_eq!(suspended.ready, Value::Unknown);
    // Not Ready after a failed wait: ready goes to true (apply waits), exports unknown.
    let not_ready = InputProviderModel {
        ready: Value::Known(false),
        ..base()
    };
    let mut again = base();
    plan_computed(&mut again, Some(&not_ready));
    assert_eq!(again.ready, Value::Known(true));
    assert_eq!(again.exported_inputs, Value::Unknown);
    let mut paused = InputProviderModel {
        suspend: Value::Known(true),
        ready: Value::Null,
        ..base()
    };
    let paused_prior = InputProviderModel {
        suspend: Value::Known(true),
        ..not_ready
    };
    plan_computed(&mut paused, Some(&paused_prior));
    assert_eq!(paused.ready, Value::Null, "suspended: nothing planned");
}
