//! Profiles an architecture of the search space with the MicroNet Challenge rules.
//!
//!     cargo run --release --example profile -- --arch oneshot-s+
//!     cargo run --release --example profile -- --arch "0,0,3,1,...;6,5,3,5,..." --no-se --head original
//!     cargo run --release --example profile -- --arch my_genome.json --convention clip2 --json
//!
//! Prints the seed-style per-block table and the float32 / float16 / int8 scores.
//! `--json` prints the unrounded totals as one JSON object on the last line.

use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use shufflenas::cli::architecture_for;
use shufflenas::micronet_score::{Baseline, Convention, RowRounding};
use shufflenas::model::{Layout, SearchSpace, cost};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ConventionArg {
    /// Clip counted as one multiplication (the seed's 588M).
    Clip1,
    /// Clip counted as two multiplications (the seed's 589.6M profile total).
    Clip2,
    /// Clip1 plus the SE gate multiplication.
    Strict,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum HeadArg {
    /// Pool → 1×1 conv with bias → hard-swish → dropout → classifier.
    Mobilenetv3,
    /// 1×1 conv → BN → activation → pool → dropout → classifier.
    Original,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LayoutArg {
    /// Stage outputs [64, 160, 320, 640].
    Oneshot,
    /// Stage outputs [48, 128, 256, 512].
    Shufflenetv2plus,
}

/// MicroNet profile of a ShuffleNAS architecture.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Preset name (oneshot-s+, oneshot, supernet-max), a JSON genome file, or
    /// BLOCKS;CHANNELS (two comma lists of 20 genes).
    #[arg(long, default_value = "oneshot-s+")]
    arch: String,
    /// Counting convention.
    #[arg(long, value_enum, default_value = "clip1")]
    convention: ConventionArg,
    /// Input side in pixels.
    #[arg(long, default_value_t = 224)]
    input_size: usize,
    /// Number of classes.
    #[arg(long, default_value_t = 1000)]
    classes: usize,
    /// Input channels (3 for RGB).
    #[arg(long, default_value_t = 3)]
    input_channels: usize,
    /// Stride of the first conv (1 for 32-pixel inputs).
    #[arg(long, default_value_t = 2)]
    stem_stride: usize,
    /// No squeeze-excitation, ReLU everywhere.
    #[arg(long)]
    no_se: bool,
    /// Head design.
    #[arg(long, value_enum, default_value = "mobilenetv3")]
    head: HeadArg,
    /// Stage channel layout.
    #[arg(long, value_enum, default_value = "oneshot")]
    layout: LayoutArg,
    /// Also print the per-op table.
    #[arg(long)]
    ops: bool,
    /// Print each row as the exact sum of its ops. By default each op is rounded to
    /// 0.001M first, as the seed's table was built; the total rows are exact either way.
    #[arg(long)]
    exact_rows: bool,
    /// Print the unrounded totals as one JSON object on the last line.
    #[arg(long)]
    json: bool,
    /// Profile in the tiny space (16–128 channels, 32×32 input, the examples' `--space
    /// tiny`) instead: uses --input-channels and --classes, ignores the other space flags.
    #[arg(long)]
    tiny: bool,
}

fn main() -> ExitCode {
    shufflenas::cli::finish(run(Args::parse()))
}

fn run(args: Args) -> Result<(), String> {
    let layout = match args.layout {
        LayoutArg::Oneshot => Layout::OneShot,
        LayoutArg::Shufflenetv2plus => Layout::ShuffleNetV2Plus,
    };
    let space = if args.tiny {
        SearchSpace::tiny(args.input_channels, args.classes)
    } else {
        SearchSpace {
            use_se: !args.no_se,
            last_conv_after_pooling: matches!(args.head, HeadArg::Mobilenetv3),
            input_size: args.input_size,
            input_channels: args.input_channels,
            num_classes: args.classes,
            stem_stride: args.stem_stride,
            ..SearchSpace::oneshot_plus().with_layout(layout)
        }
    };
    space.check().map_err(|e| e.to_string())?;
    let convention = match args.convention {
        ConventionArg::Clip1 => Convention::default(),
        ConventionArg::Clip2 => Convention::clip2(),
        ConventionArg::Strict => Convention::strict(),
    };
    let arch = architecture_for(&space, &args.arch).map_err(|e| e.to_string())?;
    let net = cost::architecture_ops(&space, &arch).map_err(|e| e.to_string())?;
    let baseline = Baseline::default();
    let counts = net.counts(&convention);
    let rows = if args.exact_rows { RowRounding::Exact } else { RowRounding::PerOp };
    let profile = net.profile(convention).with_row_rounding(rows);
    println!("architecture: {arch}");
    println!();
    print!("{}", profile.layer_table());
    if args.ops {
        println!();
        print!("{}", profile.op_table());
    }
    println!();
    print!("{}", profile.score_report(&baseline));
    println!();
    println!(
        "MACs: {:.2}M, trainable parameters: {} ({:.3}M)",
        counts.macs as f64 / 1e6,
        counts.trainable_params,
        counts.trainable_params as f64 / 1e6
    );
    if args.json {
        let scores = counts.scores(&baseline);
        let json = serde_json::json!({
            "params": counts.params(),
            "mults": counts.mults.total(),
            "adds": counts.adds.total(),
            "macs": counts.macs,
            "mflops": counts.mflops(),
            "quant_params": counts.quant_params(),
            "quant_mults": counts.mults.quantizable,
            "quant_adds": counts.adds.quantizable,
            "trainable_params": counts.trainable_params,
            "score_fp32": scores.fp32,
            "score_fp16": scores.fp16,
            "score_int8": scores.int8,
        });
        println!("{json}");
    }
    Ok(())
}
