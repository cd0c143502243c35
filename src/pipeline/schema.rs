//! The value schema a report configured by columns writes: read from the registry when its
//! job opens, and a new version registered when Gladly adds a column (before the first record
//! that has it). Built-in reports write their fixed schemas.

use std::sync::Arc;

use super::error::SetupError;
use super::job::ReportJob;
use crate::kafka::registry::{RegistryClient, RegistryError};
use crate::records::derived::DerivedSchema;
use crate::records::{ConvertSettings, Converter, SchemaIds};
use crate::report::{Format, Header, ReportSpec, Source};

/// The converter of `spec`, and for a report configured by columns the value schema it
/// writes: the registry's latest version (so a restart keeps every field), or none yet
/// (the first answer's header registers one; see [`schema_for`]).
pub(super) async fn converter(
    registry: &RegistryClient,
    spec: &ReportSpec,
    ids: SchemaIds,
) -> Result<(Converter, Option<Arc<DerivedSchema>>), SetupError> {
    let report = spec.report;
    let format = match &spec.format {
        Format::Typed(_) => {
            let aggregation_level = match &spec.source {
                Source::MetricSet {
                    aggregation_level, ..
                } => aggregation_level.clone(),
                Source::WorkSessionEvents => None,
            };
            let settings = ConvertSettings {
                timezone: spec.timezone,
                aggregation_level,
            };
            return Ok((Converter::new(report, settings, ids), None));
        }
        Format::Derived(d) => d,
    };
    let subject = format!("{}-value", spec.topic);
    let (schema, value) = match registry.latest(&subject).await? {
        None => (DerivedSchema::new(report), 0),
        Some((id, text)) => (
            DerivedSchema::from_value_schema(report, &text).map_err(|e| {
                SetupError::Registry(RegistryError::Response {
                    method: "GET",
                    url: subject.clone(),
                    detail: format!("the latest value schema is not one this service derived: {e}"),
                })
            })?,
            id,
        ),
    };
    let schema = Arc::new(schema);
    let ids = SchemaIds { value, ..ids };
    let converter = Converter::derived(
        report,
        format.clone(),
        Arc::clone(&schema),
        spec.timezone,
        ids,
    );
    Ok((converter, Some(schema)))
}

/// Makes sure `job` writes a value schema with every column of `header` (a report
/// configured by columns): when Gladly added one, registers the next version (the new
/// field nullable, so every earlier record still reads) before the first record that has
/// it. Nothing to do for a built-in report.
pub(super) async fn schema_for(
    registry: &RegistryClient,
    job: &mut ReportJob,
    header: &Header,
) -> Result<(), RegistryError> {
    let (Some(schema), Format::Derived(format)) = (&job.schema, &job.spec.format) else {
        return Ok(());
    };
    let Some(next) = schema.extended(header) else {
        return Ok(());
    };
    let subject = format!("{}-value", job.spec.topic);
    let value = registry.register(&subject, &next.value_schema()).await?;
    let added: Vec<&str> = next.columns()[schema.columns().len()..]
        .iter()
        .map(|c| c.header.as_str())
        .collect();
    tracing::info!(report = %job.report, %subject, id = value, columns = ?added, "registered a value schema version with the report's new columns");
    let next = Arc::new(next);
    let ids = SchemaIds {
        value,
        ..job.converter.ids()
    };
    job.converter = Converter::derived(
        job.report,
        format.clone(),
        Arc::clone(&next),
        job.spec.timezone,
        ids,
    );
    job.schema = Some(next);
    Ok(())
}
