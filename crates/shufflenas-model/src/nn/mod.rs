//! Burn modules of the search space, generic over the backend.
//!
//! Everything is built from the decoded [`NetworkPlan`](crate::NetworkPlan): the
//! [`Supernet`] from every position's four blocks at maximum width, the fixed
//! [`ShuffleNasNet`] from one genome's plan. Both run the same [`ChoiceBlock`] code;
//! the supernet slices its weights to the genome's mid channels.

pub mod activation;
pub mod block;
pub mod conv;
pub mod conv_bn;
pub mod head;
pub mod norm;
pub mod se;
pub mod shuffle;
pub mod subnet;
pub mod supernet;

pub use activation::{HSigmoid, HSigmoidConfig, HSwish, HSwishConfig, hard_sigmoid, hard_swish};
pub use block::{ChoiceBlock, ChoiceBlockConfig};
pub use conv::{ConvInit, SlicedConv2d, SlicedConv2dConfig};
pub use conv_bn::{ConvBnAct, ConvBnActConfig};
pub use head::{Head, HeadConfig, StemConfig};
pub use norm::{SlicedBatchNorm, SlicedBatchNormConfig};
pub use se::{SqueezeExcitation, SqueezeExcitationConfig};
pub use shuffle::channel_shuffle_split;
pub use subnet::{ShuffleNasNet, ShuffleNasNetConfig};
pub use supernet::{ChoicePosition, Supernet, SupernetConfig};

/// A new trainable parameter holding `value` (a slice of a supernet weight, a folded
/// weight), cut from the autodiff graph it was computed in, so that on a training
/// backend it is a leaf of its own that an optimizer can update; on an inference
/// backend the same as `Param::from_tensor`.
pub(crate) fn standalone_param<B: burn::prelude::Backend, const D: usize>(
    value: burn::prelude::Tensor<B, D>,
) -> burn::module::Param<burn::prelude::Tensor<B, D>> {
    burn::module::Param::from_tensor(value.detach())
}

#[cfg(test)]
pub(crate) mod tests {
    /// The CPU training backend used by the tests.
    pub type TestBackend = burn::backend::Autodiff<burn::backend::Flex>;
}
