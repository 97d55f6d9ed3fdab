//! Burn's global collective orchestrator for multi-node DDP training: start it once,
//! on a machine every node can reach, then start `train_subnet` / `train_supernet` with
//! `--ddp --nodes N --node-rank R --orchestrator ws://HOST:PORT --node-address ws://ME:PORT2`
//! on each node.
//!
//! ```text
//! cargo run --release --features ddp --example ddp_orchestrator -- --port 3000
//! ```

use std::process::ExitCode;

use clap::Parser;

/// Runs the orchestrator until stopped (Ctrl-C).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Port to listen on (WebSocket).
    #[arg(long, default_value_t = 3000)]
    port: u16,
}

fn main() -> ExitCode {
    let args = Args::parse();
    println!("DDP orchestrator listening on port {} (Ctrl-C stops it)", args.port);
    shufflenas::cli::finish(shufflenas::train::ddp::run_orchestrator(args.port).map_err(|e| e.to_string()))
}
