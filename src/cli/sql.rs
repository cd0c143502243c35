//! `sql`: print the SQL tables of the topics (derived from the Avro schemas) for a stream
//! processor or a warehouse.

use std::io::Write as _;

use gladly_kafka::config::Config;
use gladly_kafka::records::sql::{self, FlinkConnection};

/// The SQL dialect `sql` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Dialect {
    /// Flink SQL: one `upsert-kafka` table per topic, formats `avro-confluent`.
    Flink,
    /// PostgreSQL: the tables the shipped JDBC sinks keep (`warehouse.<table>`).
    Postgres,
}

/// `gladly-kafka sql`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SqlArgs {
    /// flink: CREATE TABLE statements for Flink SQL's upsert-kafka connector, pointed at
    /// [kafka] bootstrap_servers and the [registry] url (its Confluent-compatible API);
    /// postgres: the warehouse tables the shipped JDBC sinks (deploy/connect/sinks/) create.
    #[arg(long, value_enum)]
    pub(crate) dialect: Dialect,
    /// Only these tables (comma-separated: work_sessions, contacts, agent_summary,
    /// conversations, agents, inboxes, teams, topics); default: all.
    #[arg(long, value_delimiter = ',')]
    pub(crate) tables: Vec<String>,
}

/// Prints the statements; a topic with no table (its key has a nullable field) is named on
/// stderr and left out. Fails when no table is left.
pub(crate) fn print(config: &Config, args: &SqlArgs) -> anyhow::Result<()> {
    let connection = FlinkConnection {
        bootstrap_servers: config.kafka.bootstrap_servers.clone(),
        registry_url: config.registry.url.clone(),
    };
    let mut tables = config.topic_tables();
    if !args.tables.is_empty() {
        if let Some(unknown) = args
            .tables
            .iter()
            .find(|n| !tables.iter().any(|t| &t.name == *n))
        {
            let known: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
            anyhow::bail!(
                "--tables: no table {unknown}; the tables are {}",
                known.join(", ")
            );
        }
        tables.retain(|t| args.tables.contains(&t.name));
    }
    let mut out = std::io::stdout().lock();
    let mut printed = 0;
    for t in &tables {
        let ddl = match args.dialect {
            Dialect::Flink => sql::flink_table(t, &connection),
            Dialect::Postgres => sql::postgres_table(t),
        };
        match ddl {
            Ok(ddl) => {
                writeln!(out, "{ddl}")?;
                printed += 1;
            }
            Err(e) => eprintln!("gladly-kafka sql: left out {e}"),
        }
    }
    anyhow::ensure!(printed > 0, "no table to print");
    Ok(())
}
