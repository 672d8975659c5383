//! `hookflow`: the command over a store, knowing no workflow (it cannot resume runs; see
//! the crate docs for an admin binary that can).

fn main() -> std::process::ExitCode {
    hookflow_cli::Cli::new().main()
}
