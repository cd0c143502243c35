//! The `gladly-kafka` command line.

fn main() -> anyhow::Result<()> {
    println!("gladly-kafka {}", env!("CARGO_PKG_VERSION"));
    Ok(())
}
