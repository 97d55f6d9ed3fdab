//! Networks as named layers of ops, and their profile tables.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::counts::{Baseline, Convention, Counts};
use crate::op::{Op, OpKind};

/// A named group of ops that forms one row of a per-block profile table
/// (e.g. "First conv", "SNB-3x3", "Classifier").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// Row label.
    pub name: String,
    /// Input spatial side shown in the table (`inp_size`).
    pub input_size: u64,
    /// Kernel side shown in the table; `None` prints as -1.
    pub kernel_size: Option<u64>,
    /// Input channels.
    pub in_channels: u64,
    /// Output channels.
    pub out_channels: u64,
    /// The ops, in execution order.
    pub ops: Vec<Op>,
}

impl Layer {
    /// Counts of all ops of the layer.
    pub fn counts(&self, convention: &Convention) -> Counts {
        self.ops.iter().map(|op| op.counts(convention)).sum()
    }

    /// The row's params, mults and adds in millions, formed as `rounding` says.
    pub fn row_values(&self, convention: &Convention, rounding: RowRounding) -> RowValues {
        match rounding {
            RowRounding::Exact => RowValues::of(&self.counts(convention), |v| v),
            RowRounding::PerOp => self
                .ops
                .iter()
                .map(|op| RowValues::of(&op.counts(convention), round_to_thousandth))
                .fold(RowValues::default(), |sum, op| RowValues {
                    params: sum.params + op.params,
                    mults: sum.mults + op.mults,
                    adds: sum.adds + op.adds,
                }),
        }
    }

    /// "True", "False" or "Mixed", for the table's quantizable column.
    /// Ops without cost (batch norm) do not decide it.
    pub fn quantizable_label(&self) -> &'static str {
        let flags = self.ops.iter().filter(|op| !matches!(op.kind, OpKind::BatchNorm { .. }));
        let (mut any_true, mut any_false) = (false, false);
        for op in flags {
            if op.quantizable() {
                any_true = true;
            } else {
                any_false = true;
            }
        }
        match (any_true, any_false) {
            (true, true) => "Mixed",
            (false, true) => "False",
            _ => "True",
        }
    }
}

/// How a row of the per-layer table is formed from the counts of its ops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RowRounding {
    /// Each op's params, mults and adds are rounded to 0.001M before they are summed.
    /// Upstream's `utils/summary_profile.py` built the seed's per-block table this way,
    /// by summing its printed per-op table. The three total rows stay exact.
    #[default]
    PerOp,
    /// Exact sums, rounded once when printed.
    Exact,
}

/// One row of a profile table: params (16-bit units), mults and adds, in millions.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RowValues {
    /// Parameters, millions of 16-bit units.
    pub params: f64,
    /// Multiplications, millions.
    pub mults: f64,
    /// Additions, millions.
    pub adds: f64,
}

impl RowValues {
    fn of(c: &Counts, round: impl Fn(f64) -> f64) -> Self {
        Self {
            params: round(c.params() / 1e6),
            mults: round(c.mults.total() as f64 / 1e6),
            adds: round(c.adds.total() as f64 / 1e6),
        }
    }

    /// The MFLOPS column: mults + adds.
    pub fn mflops(&self) -> f64 {
        self.mults + self.adds
    }
}

/// `value` as printed with three decimals and read back, as upstream's table pipeline did.
fn round_to_thousandth(value: f64) -> f64 {
    format!("{value:.3}").parse().expect("a formatted float parses")
}

/// A network described as layers of ops, for one input image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Layers in execution order.
    pub layers: Vec<Layer>,
}

impl Network {
    /// Totals over all layers.
    pub fn counts(&self, convention: &Convention) -> Counts {
        self.layers.iter().map(|layer| layer.counts(convention)).sum()
    }

    /// A profile of this network under `convention`, ready to print, with the seed's
    /// row rounding ([`RowRounding::PerOp`]).
    pub fn profile(&self, convention: Convention) -> Profile<'_> {
        Profile { network: self, convention, rows: RowRounding::default() }
    }
}

/// Profile tables and score reports of a [`Network`].
#[derive(Debug, Clone, Copy)]
pub struct Profile<'a> {
    network: &'a Network,
    convention: Convention,
    rows: RowRounding,
}

const HEADER: &str = "| op_name | quantizable | inp_size | kernel_size | Cin | Cout | params(M) | mults(M) | adds(M) | MFLOPS |\n|---|---|---|---|---|---|---|---|---|---|\n";

impl Profile<'_> {
    /// The same profile with the layer rows formed as `rows` says.
    pub fn with_row_rounding(self, rows: RowRounding) -> Self {
        Self { rows, ..self }
    }

    /// The per-layer table, one row per layer plus the three total rows, as in the seed.
    pub fn layer_table(&self) -> String {
        let mut out = String::from(HEADER);
        for layer in &self.network.layers {
            let values = layer.row_values(&self.convention, self.rows);
            let kernel = layer.kernel_size.map_or(-1, |k| k as i64);
            row(
                &mut out,
                &layer.name,
                layer.quantizable_label(),
                layer.input_size,
                kernel,
                layer.in_channels,
                layer.out_channels,
                &values,
            );
        }
        self.totals(&mut out);
        out
    }

    /// The per-op table: one row per op (batch norm omitted), labelled with its layer.
    pub fn op_table(&self) -> String {
        let mut out = String::from(HEADER);
        for layer in &self.network.layers {
            for op in &layer.ops {
                if matches!(op.kind, OpKind::BatchNorm { .. }) {
                    continue;
                }
                let (name, input, kernel, cin, cout) = describe(op);
                let label = format!("{} / {}", layer.name, name);
                let quant = if op.quantizable() { "True" } else { "False" };
                let values = RowValues::of(&op.counts(&self.convention), |v| v);
                row(&mut out, &label, quant, input, kernel, cin, cout, &values);
            }
        }
        self.totals(&mut out);
        out
    }

    fn totals(&self, out: &mut String) {
        let c = self.network.counts(&self.convention);
        let m = |v: u64| v as f64 / 1e6;
        let _ = writeln!(
            out,
            "| Total_quant | True | {:.3} | {:.1} | {:.1} | {:.1} | ||||",
            c.quant_params() / 1e6,
            m(c.mults.quantizable),
            m(c.adds.quantizable),
            m(c.mults.quantizable + c.adds.quantizable)
        );
        let _ = writeln!(
            out,
            "| Total_no_quant | False | {:.3} | {:.3} | {:.3} | {:.2} | ||||",
            c.other_params() / 1e6,
            m(c.mults.other),
            m(c.adds.other),
            m(c.mults.other + c.adds.other)
        );
        let _ = writeln!(
            out,
            "| Total | {:.3} | {:.1} | {:.1} | {:.1} |",
            c.params() / 1e6,
            m(c.mults.total()),
            m(c.adds.total()),
            c.mflops()
        );
    }

    /// The seed-style score report for float32, float16 and int8.
    pub fn score_report(&self, baseline: &Baseline) -> String {
        let c = self.network.counts(&self.convention);
        let s = c.scores(baseline);
        let (bp, bf) = (baseline.params / 1e6, baseline.flops / 1e6);
        let params = c.params() / 1e6;
        let (qp, op) = (c.quant_params() / 1e6, c.other_params() / 1e6);
        let mults = c.mults.total() as f64 / 1e6;
        let adds = c.adds.total() as f64 / 1e6;
        let (qm, om) = (c.mults.quantizable as f64 / 1e6, c.mults.other as f64 / 1e6);
        let (qa, oa) = (c.adds.quantizable as f64 / 1e6, c.adds.other as f64 / 1e6);
        let mut out = String::new();
        let _ = writeln!(out, "Float32 scores:");
        let _ = writeln!(out, "param score: {params:.3} / {bp} = {:.3}", params / bp);
        let _ = writeln!(out, "flop score: {:.1} / {bf} = {:.3}", c.mflops(), c.mflops() / bf);
        let _ = writeln!(out, "Σ scores: {:.2}", s.fp32);
        let _ = writeln!(out, "Float16 scores:");
        let _ = writeln!(out, "param score: {params:.3} / 2 / {bp} = {:.3}", params / 2.0 / bp);
        let _ = writeln!(out, "flop score: ({mults:.1} / 2 + {adds:.1}) / {bf} = {:.3}", (mults / 2.0 + adds) / bf);
        let _ = writeln!(out, "Σ scores: {:.3}", s.fp16);
        let _ = writeln!(out, "Int8 scores:");
        let _ = writeln!(out, "param score: ({qp:.2} / 4 + {op:.3}) / {bp} = {:.3}", (qp / 4.0 + op) / bp);
        let _ = writeln!(
            out,
            "flop score: (({qm:.1} / 4 + {om:.2}) + ({qa:.1} / 4 + {oa:.2})) / {bf} = {:.3}",
            (qm / 4.0 + om + qa / 4.0 + oa) / bf
        );
        let _ = writeln!(out, "Σ scores: {:.3}", s.int8);
        out
    }
}

#[allow(clippy::too_many_arguments)]
fn row(out: &mut String, name: &str, quant: &str, input: u64, kernel: i64, cin: u64, cout: u64, v: &RowValues) {
    let _ = writeln!(
        out,
        "| {name} | {quant} | {input} | {kernel} | {cin} | {cout} | {:.3} | {:.3} | {:.3} | {:.3} |",
        v.params,
        v.mults,
        v.adds,
        v.mflops()
    );
}

/// Table columns of one op: name, input side, kernel (-1 when none), Cin, Cout.
fn describe(op: &Op) -> (String, u64, i64, u64, u64) {
    match &op.kind {
        OpKind::Conv2d { input, kernel, in_channels, out_channels, .. }
        | OpKind::SparseConv { input, kernel, in_channels, out_channels, .. } => {
            ("conv".into(), input.height, *kernel as i64, *in_channels, *out_channels)
        }
        OpKind::Depthwise { input, kernel, channels, .. } => {
            ("depthwise".into(), input.height, *kernel as i64, *channels, *channels)
        }
        OpKind::FullyConnected { in_features, out_features, .. } => ("fc".into(), 1, 1, *in_features, *out_features),
        OpKind::ChannelShuffle { input, channels } => ("shuffle".into(), input.height, 1, *channels, *channels),
        OpKind::Elementwise { kind, input, channels } => (format!("{kind:?}"), input.height, -1, *channels, *channels),
        OpKind::GlobalAvgPool { input, channels } => ("GAP".into(), input.height, -1, *channels, *channels),
        OpKind::Scale { input, channels, .. } => ("scale".into(), input.height, -1, *channels, *channels),
        OpKind::Add { input, channels } => ("add".into(), input.height, -1, *channels, *channels),
        OpKind::BatchNorm { channels } => ("bn".into(), 0, -1, *channels, *channels),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Spatial;

    fn layer_of_two_relus() -> Layer {
        // Each ReLU on 20×20×1 = 400 elements: 0.0004M mults, which prints as 0.000.
        let relu = || crate::activation::relu(Spatial::square(20), 1);
        Layer {
            name: "two relus".into(),
            input_size: 20,
            kernel_size: None,
            in_channels: 1,
            out_channels: 1,
            ops: [relu(), relu()].concat(),
        }
    }

    #[test]
    fn per_op_rounding_rounds_each_op_before_summing() {
        let layer = layer_of_two_relus();
        let convention = Convention::default();
        assert_eq!(layer.row_values(&convention, RowRounding::PerOp).mults, 0.0);
        assert!((layer.row_values(&convention, RowRounding::Exact).mults - 0.0008).abs() < 1e-12);
        let net = Network { layers: vec![layer] };
        let table = net.profile(convention).with_row_rounding(RowRounding::Exact).layer_table();
        assert!(table.contains("| two relus | True | 20 | -1 | 1 | 1 | 0.000 | 0.001 | 0.000 | 0.001 |"), "{table}");
        assert!(net.profile(convention).layer_table().contains("| 0.000 | 0.000 | 0.000 | 0.000 |"));
    }
}
