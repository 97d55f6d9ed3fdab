mod activation;
// shufflenas patch: the batch-norm sums as one custom operation.
mod batch_norm;
mod binary;
mod bool_tensor;
// shufflenas patch: a pointwise convolution's bias as its own, fusable addition.
mod conv_bias;
#[cfg(feature = "distributed")]
mod distributed;
mod int_tensor;
mod module;
mod qtensor;
mod tensor;
mod transaction;
mod unary;

mod base;
pub use base::NoOp;
