//! The provider: its configuration schema, Configure (which never connects), and the list of
//! resources and data sources.
