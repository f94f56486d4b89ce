//! The `timeouts` block every cluster-backed resource has (create, update, delete as Go
//! durations) and the wait limit of an operation read from it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::flux::duration::parse_duration;
use crate::framework::diagnostics::Diagnostics;
use crate::framework::model::Value;
use crate::framework::path::AttrPath;
use crate::framework::schema::{Attribute, Block, NestedBlock, Nesting};

/// The `timeouts` block: how long create, update and delete wait.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct Timeouts {
    /// Create timeout, a Go duration.
    pub create: Value<String>,
    /// Update timeout, a Go duration.
    pub update: Value<String>,
    /// Delete timeout, a Go duration.
    pub delete: Value<String>,
}

/// The operation a timeout is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// Create.
    Create,
    /// Update.
    Update,
    /// Delete.
    Delete,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// The `timeouts` nested block, documented with its default.
pub fn timeouts_block(default: &str) -> NestedBlock {
    let attr = |name: &str, what: &str| {
        Attribute::string(name).optional().description(format!(
            "How long {what} may wait for the cluster, as a Go duration (`10m`, `1h`). \
             Default `{default}`."
        ))
    };
    NestedBlock::new(
        "timeouts",
        Nesting::Single,
        Block::new(
            "How long each operation may wait before it fails.",
            vec![
                attr("create", "create"),
                attr("update", "update"),
                attr("delete", "destroy"),
            ],
        ),
    )
}

/// The timeout configured for `operation`, or `default`.
///
/// # Errors
///
/// A diagnostic at `timeouts.<operation>` when the duration does not parse.
pub fn timeout(
    timeouts: &Value<Timeouts>,
    operation: Operation,
    default: Duration,
) -> Result<Duration, Diagnostics> {
    let Some(t) = timeouts.as_known() else {
        return Ok(default);
    };
    let value = match operation {
        Operation::Create => &t.create,
        Operation::Update => &t.update,
        Operation::Delete => &t.delete,
    };
    match value.as_known() {
        None => Ok(default),
        Some(text) => parse_duration(text).map_err(|e| {
            Diagnostics::from_error_at(
                AttrPath::attr("timeouts").then_attr(operation.name()),
                "Invalid Timeout",
                format!("{e}. Use a Go duration such as \"10m\" or \"1h30m\"."),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    #[test]
    fn timeouts_parse_or_default() {
        let default = Duration::from_secs(600);
        let t = Value::Known(Timeouts {
            create: Value::Known("90s".into()),
            update: Value::Null,
            delete: Value::Known("soon".into()),
        });
        assert_eq!(
            timeout(&t, Operation::Create, default),
            Ok(Duration::from_secs(90))
        );
        assert_eq!(timeout(&t, Operation::Update, default), Ok(default));
        assert_eq!(
            timeout(&Value::Null, Operation::Delete, default),
            Ok(default)
        );
        let err = timeout(&t, Operation::Delete, default).unwrap_err();
        assert_eq!(
            err.0[0].path,
            Some(AttrPath::attr("timeouts").then_attr("delete"))
        );
    }
}
