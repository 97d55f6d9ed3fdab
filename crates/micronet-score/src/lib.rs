//! # micronet-score
//!
//! Counting rules of the [MicroNet Challenge](https://micronet-challenge.github.io/):
//! describe any network as a list of [`Op`]s grouped into [`Layer`]s, then get its
//! parameters (16-bit units), multiplications and additions with the quantizable
//! split, the float32 / float16 / int8 [`Scores`], MACs, trainable-parameter counts
//! and seed-style profile tables.
//!
//! The library knows nothing about any particular network. Conventions that differ
//! between counters (how many mults a clip costs, whether a squeeze-excitation gate
//! multiplication is counted) are set with [`Convention`].
//!
//! ```
//! use micronet_score::{activation, Baseline, Convention, Layer, Network, OpKind, Spatial};
//!
//! let input = Spatial::square(224);
//! let mut ops = vec![OpKind::Conv2d {
//!     input, kernel: 3, stride: 2, in_channels: 3, out_channels: 16, bias: false,
//! }.into()];
//! ops.extend(activation::hard_swish(input.strided(2), 16));
//! let net = Network { layers: vec![Layer {
//!     name: "First conv".into(), input_size: 224, kernel_size: Some(3),
//!     in_channels: 3, out_channels: 16, ops,
//! }]};
//! let counts = net.counts(&Convention::default());
//! assert_eq!(counts.mults.quantizable, 27 * 112 * 112 * 16);
//! assert_eq!(counts.adds.other, 112 * 112 * 16); // the "+3" of hard-swish
//! let scores = counts.scores(&Baseline::default());
//! assert!(scores.int8 < scores.fp16 && scores.fp16 < scores.fp32);
//! ```

#![warn(missing_docs)]

pub mod activation;
mod counts;
mod network;
mod op;

pub use counts::{Baseline, Convention, Counts, Scores, Split};
pub use network::{Layer, Network, Profile, RowRounding, RowValues};
pub use op::{ElementwiseKind, Op, OpKind, Spatial};
