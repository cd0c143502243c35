//! The service configuration: one TOML file plus `GLADLY_KAFKA__SECTION__KEY` environment overrides.
