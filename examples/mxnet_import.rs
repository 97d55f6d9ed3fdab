//! Converts an original MXNet `.params` file (e.g. a published OneShot-S+ release)
//! into our safetensors format, and optionally runs a forward pass.
//!
//!     cargo run --release --example mxnet_import -- --params oneshot-s+model-0000.params \
//!       --arch "0,0,0,1,...;8,7,6,8,..." --out model.safetensors \
//!       [--no-se] [--head original|mobilenetv3] [--classes N] [--input-size S] \
//!       [--forward-input x.npy --forward-output logits.npy]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use clap::{Parser, ValueEnum};
use shufflenas::backend::{self, Inference};
use shufflenas::cli::architecture_for;
use shufflenas::model::SearchSpace;
use shufflenas::model::nn::ShuffleNasNetConfig;
use shufflenas::model::weights::{load_gluon, read_mxnet_params};
use shufflenas::npy::{self, NpyArray};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum HeadArg {
    Mobilenetv3,
    Original,
}

/// MXNet `.params` → safetensors converter.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The MXNet `.params` file (`save_parameters` format).
    #[arg(long)]
    params: PathBuf,
    /// BLOCKS;CHANNELS (20 block genes, ';', 20 channel genes), a preset or a JSON genome.
    #[arg(long)]
    arch: String,
    /// Network without squeeze-excitation (ReLU everywhere).
    #[arg(long)]
    no_se: bool,
    /// Head design.
    #[arg(long, value_enum, default_value = "mobilenetv3")]
    head: HeadArg,
    /// Number of classes.
    #[arg(long, default_value_t = 1000)]
    classes: usize,
    /// Input side in pixels.
    #[arg(long, default_value_t = 224)]
    input_size: usize,
    /// Output safetensors file.
    #[arg(long)]
    out: PathBuf,
    /// Float32 NCHW input to run through the converted network.
    #[arg(long, requires = "forward_output")]
    forward_input: Option<PathBuf>,
    /// Where to write the float32 logits.
    #[arg(long, requires = "forward_input")]
    forward_output: Option<PathBuf>,
    /// Convert even when tensors of the file are left over (by default a refusal: the
    /// flags describe another network than the one saved, e.g. `--no-se` on an SE
    /// checkpoint).
    #[arg(long)]
    allow_unused: bool,
}

fn main() -> ExitCode {
    shufflenas::cli::finish(run(Args::parse()))
}

fn run(args: Args) -> Result<(), String> {
    let space = SearchSpace {
        use_se: !args.no_se,
        last_conv_after_pooling: matches!(args.head, HeadArg::Mobilenetv3),
        num_classes: args.classes,
        input_size: args.input_size,
        ..SearchSpace::oneshot_plus()
    };
    let arch = architecture_for(&space, &args.arch).map_err(|e| e.to_string())?;
    check_outputs(&args)?;
    let device = backend::device()?;
    let params = read_mxnet_params(&args.params).map_err(|e| e.to_string())?;
    let template =
        ShuffleNasNetConfig::new(space.clone(), arch.clone()).init::<Inference>(&device).map_err(|e| e.to_string())?;
    let net = load_gluon(&template, &params).map_err(|e| e.to_string())?;
    let unused = params.len() - count_used(&net);
    if unused > 0 && !args.allow_unused {
        return Err(format!(
            "{} of the {} tensors of {} fit no layer of the network these flags describe (--no-se on an SE \
             checkpoint, say): check --arch, --no-se and --head, or pass --allow-unused to convert anyway",
            unused,
            params.len(),
            args.params.display()
        ));
    }
    // The input is read and checked before anything is written: a bad one leaves an
    // earlier `--out` as it was.
    let forward = match (&args.forward_input, &args.forward_output) {
        (Some(input), Some(output)) => Some((read_input(input, &args)?, output)),
        _ => None,
    };
    let tmp = shufflenas::io::temp_path(&args.out);
    let mut store = SafetensorsStore::from_file(&tmp).metadata("architecture", arch.to_string());
    let written = net
        .save_into(&mut store)
        .map_err(|e| e.to_string())
        .and_then(|()| std::fs::rename(&tmp, &args.out).map_err(|e| e.to_string()));
    if let Err(e) = written {
        // Leave nothing half-written behind; an earlier file at `--out` stays as it was.
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("cannot write {}: {e}", args.out.display()));
    }
    println!(
        "converted {} tensors of {} into {} ({} unused)",
        count_used(&net),
        args.params.display(),
        args.out.display(),
        unused
    );
    if let Some((x, output)) = forward {
        let shape: [usize; 4] = x.shape[..].try_into().map_err(|_| "the input is checked to be NCHW".to_string())?;
        let x = Tensor::<Inference, 4>::from_data(TensorData::new(x.values, shape), &device);
        let logits = net.forward(x);
        let shape = logits.dims().to_vec();
        let values: Vec<f32> = logits.into_data().convert::<f32>().into_vec().map_err(|e| format!("{e:?}"))?;
        npy::write(output, &NpyArray { shape, values }).map_err(|e| e.to_string())?;
        println!("wrote logits to {}", output.display());
    }
    Ok(())
}

/// Refuses output paths that would overwrite the `.params` file or each other.
fn check_outputs(args: &Args) -> Result<(), String> {
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    let mut inputs = vec![("--params", args.params.as_path())];
    inputs.extend(args.forward_input.as_deref().map(|p| ("--forward-input", p)));
    let mut outputs = vec![("--out", args.out.as_path())];
    outputs.extend(args.forward_output.as_deref().map(|p| ("--forward-output", p)));
    for (out_flag, out) in &outputs {
        for (in_flag, input) in &inputs {
            if same(out, input) {
                return Err(format!("{out_flag} {} is also {in_flag}: it would be overwritten", out.display()));
            }
        }
    }
    if let [(_, a), (_, b)] = outputs[..]
        && same(a, b)
    {
        return Err(format!("--out and --forward-output are the same file, {}", a.display()));
    }
    Ok(())
}

/// The `--forward-input` array, checked against the network's input: float32 NCHW,
/// 3 channels, `--input-size` pixels, at least one image.
fn read_input(input: &Path, args: &Args) -> Result<NpyArray, String> {
    let x = npy::read(input).map_err(|e| e.to_string())?;
    let [n, c, h, w] = x.shape[..] else {
        return Err(format!("{}: expected an NCHW array, got shape {:?}", input.display(), x.shape));
    };
    if n == 0 || c != 3 || h != args.input_size || w != args.input_size {
        return Err(format!(
            "{}: input shape {:?} does not match the network (N ≥ 1, 3, {}, {})",
            input.display(),
            x.shape,
            args.input_size,
            args.input_size
        ));
    }
    Ok(x)
}

/// Tensors of the gluon network that the converted one holds (params + BN statistics).
fn count_used<B: Backend>(net: &shufflenas::model::nn::ShuffleNasNet<B>) -> usize {
    let mut bn = 0;
    net.for_each_bn(&mut |_| bn += 1);
    let mut convs = 0;
    let mut biases = 0;
    let mut count = |unit: &shufflenas::model::nn::ConvBnAct<B>| {
        convs += 1;
        biases += usize::from(unit.conv.bias.is_some());
    };
    count(&net.stem);
    for block in &net.blocks {
        block.projection.iter().chain(&block.main).for_each(&mut count);
        if let Some(se) = &block.se {
            count(&se.squeeze);
            count(&se.excitation);
        }
    }
    count(&net.head.last_conv);
    count(&net.head.classifier);
    convs + biases + 4 * bn
}
