//! Training flags and progress output shared by the training examples.

use std::path::{Path, PathBuf};

use clap::Args;
use shufflenas_train::trainer::{EpochMetrics, TrainConfig};

/// Hyper-parameters (the seed's recipe; defaults scaled for small data on a CPU).
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    /// Epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Peak learning rate (after warm-up; cosine decay to 0).
    #[arg(long, default_value_t = 0.1)]
    pub lr: f64,
    /// Linear warm-up epochs.
    #[arg(long, default_value_t = 1)]
    pub warmup_epochs: usize,
    /// Weight decay on conv/linear weights (none on BN and biases).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Nesterov momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Label smoothing.
    #[arg(long, default_value_t = 0.1)]
    pub label_smoothing: f32,
    /// Seed of weights, data order, augmentation and paths.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Checkpoint every N epochs.
    #[arg(long, default_value_t = 1)]
    pub checkpoint_every: usize,
    /// Run directory (default: runs/<job>-<unix time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Resume from the latest checkpoint in --out.
    #[arg(long, requires = "out")]
    pub resume: bool,
}

impl TrainArgs {
    /// The trainer configuration, with `default_decay` when --weight-decay is not given.
    pub fn config(&self, default_decay: f64) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            lr: self.lr,
            warmup_epochs: self.warmup_epochs,
            weight_decay: self.weight_decay.unwrap_or(default_decay),
            momentum: self.momentum,
            label_smoothing: self.label_smoothing,
            seed: self.seed,
            checkpoint_every: self.checkpoint_every,
            ..TrainConfig::default()
        }
    }

    /// The run directory.
    pub fn run_dir(&self, job: &str) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            PathBuf::from("runs").join(format!("{job}-{secs}"))
        })
    }
}

/// One progress line for an epoch.
pub fn epoch_line(m: &EpochMetrics, epochs: usize) -> String {
    let val = match (m.val_top1, m.val_top5) {
        (Some(a), Some(b)) => format!(" val top-1 {:.2}% top-5 {:.2}%", 100.0 * a, 100.0 * b),
        _ => String::new(),
    };
    format!(
        "epoch {}/{epochs}: loss {:.4} train top-1 {:.2}%{val} | {:.1} img/s, lr {:.4}, {:.1} s",
        m.epoch + 1,
        m.train_loss,
        100.0 * m.train_top1,
        m.images_per_s,
        m.lr,
        m.seconds
    )
}

/// Appends an epoch to `metrics.csv` in `dir` (header on first write).
pub fn append_csv(dir: &Path, m: &EpochMetrics) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join("metrics.csv");
    let new = !path.exists();
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    if new {
        writeln!(file, "epoch,train_loss,train_top1,val_top1,val_top5,images_per_s,lr,seconds")?;
    }
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
    writeln!(
        file,
        "{},{:.6},{:.6},{},{},{:.2},{:.6},{:.2}",
        m.epoch,
        m.train_loss,
        m.train_top1,
        opt(m.val_top1),
        opt(m.val_top5),
        m.images_per_s,
        m.lr,
        m.seconds
    )
}
