//! MicroNet op lists of decoded plans, and a precomputed cost table for fast
//! constraint checks during search.
//!
//! Batch norm is listed (it is free for MicroNet but has trainable gamma/beta), the
//! channel shuffle of stride-1 blocks is a sparse permutation, and the SE gate
//! multiplication is an attention-gate scale (counted only in the strict convention).

use micronet_score::{Convention, Counts, Layer, Network, Op, OpKind, Spatial, activation};
use serde::{Deserialize, Serialize};

use crate::error::{ArchError, GeneKind, SpaceError};
use crate::genome::{Architecture, BlockChoice};
use crate::space::{Activation, BlockPlan, HeadPlan, NetworkPlan, SearchSpace, StemPlan, make_divisible};

/// Channels of the squeeze-excitation bottleneck: `make_divisible(C / 4, 8)`.
pub fn se_channels(channels: usize) -> usize {
    make_divisible(channels as f64 / 4.0, 8)
}

/// The op list of a whole decoded network.
pub fn network_ops(plan: &NetworkPlan) -> Network {
    let mut layers = stem_layers(&plan.stem);
    layers.extend(plan.blocks.iter().map(block_layer));
    layers.extend(head_layers(&plan.head));
    Network { layers }
}

/// The op list of an architecture in a space.
///
/// # Errors
/// As [`SearchSpace::decode`].
pub fn architecture_ops(space: &SearchSpace, arch: &Architecture) -> Result<Network, SpaceError> {
    Ok(network_ops(&space.decode(arch)?))
}

/// The op list of the whole supernet: stem, all four blocks of every position at their
/// maximum width, and the head. Its trainable-parameter count is the supernet's.
///
/// # Errors
/// [`SpaceError`] for an invalid space.
pub fn supernet_ops(space: &SearchSpace) -> Result<Network, SpaceError> {
    let slots = space.supernet_slots()?;
    let plan = space.plan_with(Vec::new());
    let mut layers = stem_layers(&plan.stem);
    layers.extend(slots.iter().flat_map(|blocks| blocks.iter().map(block_layer)));
    layers.extend(head_layers(&plan.head));
    Ok(Network { layers })
}

fn sq(side: usize) -> Spatial {
    Spatial::square(side as u64)
}

fn conv(input: usize, kernel: usize, stride: usize, cin: usize, cout: usize, bias: bool) -> Op {
    OpKind::Conv2d {
        input: sq(input),
        kernel: kernel as u64,
        stride: stride as u64,
        in_channels: cin as u64,
        out_channels: cout as u64,
        bias,
    }
    .into()
}

fn depthwise(input: usize, kernel: usize, stride: usize, channels: usize) -> Op {
    OpKind::Depthwise {
        input: sq(input),
        kernel: kernel as u64,
        stride: stride as u64,
        channels: channels as u64,
        bias: false,
    }
    .into()
}

fn fully_connected(cin: usize, cout: usize) -> Op {
    OpKind::FullyConnected { in_features: cin as u64, out_features: cout as u64, bias: true }.into()
}

fn batch_norm(channels: usize) -> Op {
    OpKind::BatchNorm { channels: channels as u64 }.into()
}

fn act(kind: Activation, input: usize, channels: usize) -> Vec<Op> {
    match kind {
        Activation::Relu => activation::relu(sq(input), channels as u64),
        Activation::HardSwish => activation::hard_swish(sq(input), channels as u64),
    }
}

fn act_label(kind: Activation) -> &'static str {
    match kind {
        Activation::Relu => "ReLU",
        Activation::HardSwish => "HSwish",
    }
}

/// Squeeze-excitation on an `input`-sided map of `channels`: pool, 1×1 conv with bias,
/// ReLU, 1×1 conv with bias, hard-sigmoid, gate multiplication.
fn squeeze_excitation(input: usize, channels: usize) -> Vec<Op> {
    let reduced = se_channels(channels);
    let mut ops = vec![
        OpKind::GlobalAvgPool { input: sq(input), channels: channels as u64 }.into(),
        fully_connected(channels, reduced),
    ];
    ops.extend(activation::relu(sq(1), reduced as u64));
    ops.push(fully_connected(reduced, channels));
    ops.extend(activation::hard_sigmoid(sq(1), channels as u64));
    ops.push(OpKind::Scale { input: sq(input), channels: channels as u64, attention_gate: true }.into());
    ops
}

/// Ops of one choice block, in execution order.
pub fn block_ops(block: &BlockPlan) -> Vec<Op> {
    let slot = &block.slot;
    let (h_in, h_out, s) = (slot.input_size, slot.output_size(), slot.stride);
    let (main_in, main_out, mid) = (slot.main_in_channels(), slot.main_out_channels(), block.mid_channels);
    let a = slot.activation;
    let mut ops = Vec::new();
    if s == 1 {
        ops.push(OpKind::ChannelShuffle { input: sq(h_in), channels: slot.in_channels as u64 }.into());
    } else {
        // Projection branch: dw k×k stride 2 → BN → 1×1 → BN → act.
        let k = block.kernel();
        ops.extend([
            depthwise(h_in, k, s, slot.in_channels),
            batch_norm(slot.in_channels),
            conv(h_out, 1, 1, slot.in_channels, slot.in_channels, false),
            batch_norm(slot.in_channels),
        ]);
        ops.extend(act(a, h_out, slot.in_channels));
    }
    if block.choice == BlockChoice::Sxb3 {
        // Three (dw 3×3 → BN → 1×1 → BN → act) stages; the first dw carries the stride.
        let widths = [(main_in, mid), (mid, mid), (mid, main_out)];
        for (stage, (cin, cout)) in widths.into_iter().enumerate() {
            let (input, stride) = if stage == 0 { (h_in, s) } else { (h_out, 1) };
            ops.extend([
                depthwise(input, 3, stride, cin),
                batch_norm(cin),
                conv(h_out, 1, 1, cin, cout, false),
                batch_norm(cout),
            ]);
            ops.extend(act(a, h_out, cout));
        }
    } else {
        // 1×1 → BN → act → dw k×k → BN → 1×1 → BN → act.
        let k = block.kernel();
        ops.extend([conv(h_in, 1, 1, main_in, mid, false), batch_norm(mid)]);
        ops.extend(act(a, h_in, mid));
        ops.extend([
            depthwise(h_in, k, s, mid),
            batch_norm(mid),
            conv(h_out, 1, 1, mid, main_out, false),
            batch_norm(main_out),
        ]);
        ops.extend(act(a, h_out, main_out));
    }
    if slot.use_se {
        ops.extend(squeeze_excitation(h_out, main_out));
    }
    ops
}

fn block_layer(block: &BlockPlan) -> Layer {
    Layer {
        name: block.choice.label().to_string(),
        input_size: block.slot.input_size as u64,
        kernel_size: Some(block.kernel() as u64),
        in_channels: block.slot.in_channels as u64,
        out_channels: block.slot.out_channels as u64,
        ops: block_ops(block),
    }
}

fn stem_layers(stem: &StemPlan) -> Vec<Layer> {
    let out = stem.input_size.div_ceil(stem.stride);
    vec![
        Layer {
            name: "First conv".into(),
            input_size: stem.input_size as u64,
            kernel_size: Some(3),
            in_channels: stem.in_channels as u64,
            out_channels: stem.out_channels as u64,
            ops: vec![
                conv(stem.input_size, 3, stem.stride, stem.in_channels, stem.out_channels, false),
                batch_norm(stem.out_channels),
            ],
        },
        activation_layer(stem.activation, out, stem.out_channels),
    ]
}

fn activation_layer(kind: Activation, input: usize, channels: usize) -> Layer {
    Layer {
        name: act_label(kind).into(),
        input_size: input as u64,
        kernel_size: None,
        in_channels: channels as u64,
        out_channels: channels as u64,
        ops: act(kind, input, channels),
    }
}

fn pool_layer(input: usize, channels: usize) -> Layer {
    Layer {
        name: "GAP".into(),
        input_size: input as u64,
        kernel_size: None,
        in_channels: channels as u64,
        out_channels: channels as u64,
        ops: vec![OpKind::GlobalAvgPool { input: sq(input), channels: channels as u64 }.into()],
    }
}

fn head_layers(head: &HeadPlan) -> Vec<Layer> {
    let (cin, last, h) = (head.in_channels, head.last_conv_channels, head.input_size);
    let last_conv = |input: usize, ops: Vec<Op>| Layer {
        name: "Last conv".into(),
        input_size: input as u64,
        kernel_size: Some(1),
        in_channels: cin as u64,
        out_channels: last as u64,
        ops,
    };
    let classifier = Layer {
        name: "Classifier".into(),
        input_size: 1,
        kernel_size: Some(1),
        in_channels: last as u64,
        out_channels: head.num_classes as u64,
        ops: vec![fully_connected(last, head.num_classes)],
    };
    if head.after_pooling {
        vec![
            pool_layer(h, cin),
            last_conv(1, vec![fully_connected(cin, last)]),
            activation_layer(head.activation, 1, last),
            classifier,
        ]
    } else {
        vec![
            last_conv(h, vec![conv(h, 1, 1, cin, last, false), batch_norm(last)]),
            activation_layer(head.activation, h, last),
            pool_layer(h, last),
            classifier,
        ]
    }
}

/// Per-(position, block, channel id) counts of a space, so that the cost of a genome
/// is 20 table look-ups and additions. Used by search to filter candidates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostTable {
    fixed: Counts,
    /// `blocks[position][block id][channel id]`.
    blocks: Vec<[Vec<Counts>; 4]>,
    searchable: (usize, usize),
}

impl CostTable {
    /// Precomputes the table of `space` under `convention`.
    ///
    /// # Errors
    /// [`SpaceError`] for an invalid space.
    pub fn new(space: &SearchSpace, convention: Convention) -> Result<Self, SpaceError> {
        let slots = space.slots()?;
        let plan = space.plan_with(Vec::new());
        let fixed =
            stem_layers(&plan.stem).iter().chain(&head_layers(&plan.head)).map(|layer| layer.counts(&convention)).sum();
        let blocks = slots
            .iter()
            .map(|slot| {
                BlockChoice::ALL.map(|choice| {
                    space
                        .candidate_scales
                        .iter()
                        .enumerate()
                        .map(|(id, &scale)| {
                            let block = BlockPlan {
                                slot: slot.clone(),
                                choice,
                                channel: crate::ChannelChoice(id as u8),
                                mid_channels: space.mid_channels(slot.out_channels, scale),
                            };
                            block_ops(&block).iter().map(|op| op.counts(&convention)).sum()
                        })
                        .collect()
                })
            })
            .collect();
        Ok(Self { fixed, blocks, searchable: (space.searchable_min_id, space.searchable_max_id) })
    }

    /// Counts of a genome (the same as [`architecture_ops`] followed by `counts`).
    ///
    /// # Errors
    /// [`ArchError::GeneCount`] or [`ArchError::OutOfRange`] naming the gene.
    pub fn cost(&self, arch: &Architecture) -> Result<Counts, ArchError> {
        let expected = self.blocks.len();
        for (kind, got) in [(GeneKind::Block, arch.blocks.len()), (GeneKind::Channel, arch.channels.len())] {
            if got != expected {
                return Err(ArchError::GeneCount { kind, expected, got });
            }
        }
        let mut total = self.fixed;
        for (index, (per_block, (block, channel))) in
            self.blocks.iter().zip(arch.blocks.iter().zip(&arch.channels)).enumerate()
        {
            let by_channel = &per_block[block.id() as usize];
            let counts = by_channel.get(channel.index()).ok_or(ArchError::OutOfRange {
                kind: GeneKind::Channel,
                index,
                value: i64::from(channel.0),
                min: 0,
                max: by_channel.len() - 1,
            })?;
            total += *counts;
        }
        Ok(total)
    }

    /// Counts of the parts every genome shares (stem and head).
    pub fn fixed(&self) -> &Counts {
        &self.fixed
    }

    /// Counts of `block` with channel id `channel` at `position` (`None` out of range).
    pub fn block(&self, position: usize, block: BlockChoice, channel: usize) -> Option<&Counts> {
        self.blocks.get(position)?[block.id() as usize].get(channel)
    }

    /// Number of choice positions.
    pub fn positions(&self) -> usize {
        self.blocks.len()
    }

    /// The genome with searchable channel ids that minimises `metric` (ties: lowest ids).
    /// Costs are additive per position, so the choice is made position by position.
    pub fn argmin(&self, metric: impl Fn(&Counts) -> f64) -> Architecture {
        self.extreme(|c| metric(c))
    }

    /// The genome with searchable channel ids that maximises `metric`.
    pub fn argmax(&self, metric: impl Fn(&Counts) -> f64) -> Architecture {
        self.extreme(|c| -metric(c))
    }

    fn extreme(&self, key: impl Fn(&Counts) -> f64) -> Architecture {
        let (lo, hi) = self.searchable;
        let mut arch = Architecture { blocks: Vec::new(), channels: Vec::new() };
        for per_block in &self.blocks {
            let mut best = (f64::INFINITY, BlockChoice::Snb3, lo);
            for (choice, by_channel) in BlockChoice::ALL.iter().zip(per_block) {
                for (id, counts) in by_channel.iter().enumerate().take(hi + 1).skip(lo) {
                    let value = key(counts);
                    if value < best.0 {
                        best = (value, *choice, id);
                    }
                }
            }
            arch.blocks.push(best.1);
            arch.channels.push(crate::ChannelChoice(best.2 as u8));
        }
        arch
    }

    /// The smallest and largest value of `metric` over all genomes with searchable
    /// channel ids. Costs are additive per position, so this is exact.
    pub fn range(&self, metric: impl Fn(&Counts) -> f64) -> (f64, f64) {
        let (lo, hi) = self.searchable;
        let base = metric(&self.fixed);
        let zero = metric(&Counts::default());
        let (mut min, mut max) = (base, base);
        for per_block in &self.blocks {
            let values = per_block.iter().flat_map(|by_channel| &by_channel[lo..=hi]).map(|c| metric(c) - zero);
            let (a, b) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
            min += a;
            max += b;
        }
        (min, max)
    }
}
