//! shufflenas patch: the per-channel sums of a batch norm
//! (`ModuleOps::batch_norm_sums`, added by the patched burn-backend) as one custom
//! operation, run by the inner backend.
//!
//! Without this, `Fusion<B>` took the composed default: a subtraction, a product and
//! two reductions per sum, each a full pass over the activation, with the products
//! materialised because a reduction ends a fused block. The operation is opaque to the
//! fusion optimiser, but the element-wise work around it (the normalisation, the input
//! gradient) stays ordinary float ops that fuse with their neighbours.

use crate::{
    Fusion, FusionBackend,
    stream::{OperationStreams, execution::Operation},
};
use burn_backend::{DType, Shape, ops::batch_norm::stats_dtype, tensor::FloatTensor};
use burn_ir::{CustomOpIr, HandleContainer, OperationIr, OperationOutput, TensorIr};
use std::marker::PhantomData;

/// Inputs `[x, shift]` or `[x, shift, weights]`; outputs the two sums.
#[derive(Debug)]
struct BatchNormSumsOp<B: FusionBackend> {
    desc: CustomOpIr,
    _b: PhantomData<B>,
}

impl<B: FusionBackend> Operation<B::FusionRuntime> for BatchNormSumsOp<B> {
    fn execute(&self, handles: &mut HandleContainer<B::Handle>) {
        let inputs = &self.desc.inputs;
        let x = handles.get_float_tensor::<B>(&inputs[0]);
        let shift = handles.get_float_tensor::<B>(&inputs[1]);
        let weights = inputs.get(2).map(|weights| handles.get_float_tensor::<B>(weights));
        let (first, second) = B::batch_norm_sums(x, shift, weights);
        handles.register_float_tensor::<B>(&self.desc.outputs[0].id, first);
        handles.register_float_tensor::<B>(&self.desc.outputs[1].id, second);
    }
}

/// `Fusion<B>`'s `batch_norm_sums`: one custom operation calling `B::batch_norm_sums`.
pub(crate) fn batch_norm_sums<B: FusionBackend>(
    x: FloatTensor<Fusion<B>>,
    shift: FloatTensor<Fusion<B>>,
    weights: Option<FloatTensor<Fusion<B>>>,
) -> (FloatTensor<Fusion<B>>, FloatTensor<Fusion<B>>) {
    let mut streams = OperationStreams::with_inputs([&x, &shift]);
    if let Some(weights) = weights.as_ref() {
        streams.tensor(weights);
    }
    let client = x.client.clone();
    let channels = x.shape[1];
    let dtype = DType::from(stats_dtype(x.dtype));
    let mut inputs = vec![x.into_ir(), shift.into_ir()];
    inputs.extend(weights.map(|weights| weights.into_ir()));
    let sum = || TensorIr::uninit(client.create_empty_handle(), Shape::new([channels]), dtype);
    let outputs = [sum(), sum()];
    let desc = CustomOpIr::new("shufflenas_batch_norm_sums", &inputs, &outputs);
    let [first, second] = client
        .register(
            streams,
            OperationIr::Custom(desc.clone()),
            BatchNormSumsOp::<B> {
                desc,
                _b: PhantomData,
            },
        )
        .outputs();
    (first, second)
}
