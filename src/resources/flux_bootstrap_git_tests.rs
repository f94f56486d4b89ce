//! Unit tests of `flux_bootstrap_git`'s plan-time checks.

use super::*;
use crate::resources::flux_bootstrap_git_model::BootstrapSyncModel;

fn model(namespace: Option<&str>, sync: Value<BootstrapSyncModel>) -> BootstrapModel {
    BootstrapModel {
        namespace: namespace.map_or(Value::Null, |n| Value::Known(n.to_owned())),
        sync,
        ..BootstrapModel::default()
    }
}

fn named(name: Value<String>) -> Value<BootstrapSyncModel> {
    Value::Known(BootstrapSyncModel {
        name,
        provider: Value::Null,
    })
}

#[test]
fn sync_name_changes_are_judged_on_the_effective_name() {
    let none = model(Some("flux-system"), Value::Null);
    let default = model(
        Some("flux-system"),
        named(Value::Known("flux-system".into())),
    );
    let unnamed = model(Some("flux-system"), named(Value::Null));
    let other = model(Some("flux-system"), named(Value::Known("fleet".into())));
    let unknown = model(Some("flux-system"), named(Value::Unknown));
    // Writing the default out, or leaving it out again, is no change.
    assert!(sync_name_unchanged(&none, &default).is_ok());
    assert!(sync_name_unchanged(&default, &none).is_ok());
    assert!(sync_name_unchanged(&none, &unnamed).is_ok());
    // A name unknown until apply is checked then.
    assert!(sync_name_unchanged(&other, &unknown).is_ok());
    // Another name, or going back to the namespace from a custom one, is refused at
    // `sync.name`.
    for (prior, planned) in [(&none, &other), (&other, &none), (&other, &default)] {
        let err = sync_name_unchanged(prior, planned).unwrap_err();
        let text = format!("{err:?}");
        assert!(text.contains("Immutable Sync Name"), "{text}");
        assert!(text.contains("sync.name cannot change"), "{text}");
    }
}
