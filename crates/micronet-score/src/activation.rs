//! Activation functions as sequences of element-wise ops.

use crate::op::{ElementwiseKind, Op, OpKind, Spatial};

fn piece(kind: ElementwiseKind, input: Spatial, channels: u64) -> Op {
    OpKind::Elementwise { kind, input, channels }.into()
}

/// ReLU: one (quantizable) multiplication per element.
pub fn relu(input: Spatial, channels: u64) -> Vec<Op> {
    vec![piece(ElementwiseKind::Relu, input, channels)]
}

/// Hard-swish `x · clip(x + 3, 0, 6) / 6`: add, clip, divide, multiply; none quantizable.
pub fn hard_swish(input: Spatial, channels: u64) -> Vec<Op> {
    let mut ops = hard_sigmoid(input, channels);
    ops.push(piece(ElementwiseKind::Multiply, input, channels));
    ops
}

/// Hard-sigmoid `clip(x + 3, 0, 6) / 6`: add, clip, divide; none quantizable.
pub fn hard_sigmoid(input: Spatial, channels: u64) -> Vec<Op> {
    vec![
        piece(ElementwiseKind::AddScalar, input, channels),
        piece(ElementwiseKind::Clip, input, channels),
        piece(ElementwiseKind::DivScalar, input, channels),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Convention;

    // The seed's profile row "HSwish | False | 112 | 16": 0.603M mults, 0.201M adds.
    #[test]
    fn hard_swish_matches_the_seed_row_after_the_first_conv() {
        let ops = hard_swish(Spatial::square(112), 16);
        let c: crate::Counts = ops.iter().map(|op| op.counts(&Convention::default())).sum();
        assert_eq!(c.mults.other, 3 * 112 * 112 * 16);
        assert_eq!(c.adds.other, 112 * 112 * 16);
        assert_eq!(c.mults.quantizable + c.adds.quantizable, 0);
        let c2: crate::Counts = ops.iter().map(|op| op.counts(&Convention::clip2())).sum();
        assert_eq!(c2.mults.other, 4 * 112 * 112 * 16);
    }
}
