//! Hard-swish, hard-sigmoid and the activation choice of a layer.

use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::space::Activation;

/// Hard-sigmoid `relu6(x + 3) / 6`, the MobileNetV3 / SE gate.
///
/// # Shapes
/// any → same
pub fn hard_sigmoid<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    x.add_scalar(3.0).clamp(0.0, 6.0).div_scalar(6.0)
}

/// Hard-swish `x · relu6(x + 3) / 6`.
///
/// # Shapes
/// any → same
pub fn hard_swish<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    // Burn's fused form: one kernel on backends that have one (2× faster on flex).
    burn::tensor::activation::hard_swish(x)
}

/// Applies `activation`.
pub fn activate<B: Backend, const D: usize>(x: Tensor<B, D>, activation: Activation) -> Tensor<B, D> {
    match activation {
        Activation::Relu => relu(x),
        Activation::HardSwish => hard_swish(x),
    }
}

/// Hard-swish as a module, for users composing their own networks.
#[derive(Module, Clone, Debug, Default)]
pub struct HSwish;

/// Config of [`HSwish`] (it has no settings).
#[derive(Config, Debug)]
pub struct HSwishConfig {}

impl HSwishConfig {
    /// Builds the module.
    pub fn init(&self) -> HSwish {
        HSwish
    }
}

impl HSwish {
    /// `x · relu6(x + 3) / 6`. Shapes: any → same.
    pub fn forward<B: Backend, const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        hard_swish(x)
    }
}

/// Hard-sigmoid as a module.
#[derive(Module, Clone, Debug, Default)]
pub struct HSigmoid;

/// Config of [`HSigmoid`] (it has no settings).
#[derive(Config, Debug)]
pub struct HSigmoidConfig {}

impl HSigmoidConfig {
    /// Builds the module.
    pub fn init(&self) -> HSigmoid {
        HSigmoid
    }
}

impl HSigmoid {
    /// `relu6(x + 3) / 6`. Shapes: any → same.
    pub fn forward<B: Backend, const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        hard_sigmoid(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::tests::TestBackend;
    use burn::tensor::{TensorData, Tolerance};

    // The exact piecewise definition matters: the golden logits were produced with it.
    #[test]
    fn hard_swish_and_hard_sigmoid_follow_the_mobilenetv3_formulas() {
        let device = Default::default();
        let x = Tensor::<TestBackend, 1>::from_floats([-4.0, -3.0, -1.0, 0.0, 1.5, 3.0, 5.0], &device);
        let expected_sig = TensorData::from([0.0f32, 0.0, 2.0 / 6.0, 0.5, 0.75, 1.0, 1.0]);
        hard_sigmoid(x.clone()).into_data().assert_approx_eq::<f32>(&expected_sig, Tolerance::absolute(1e-6));
        let expected_swish = TensorData::from([0.0f32, 0.0, -1.0 / 3.0, 0.0, 1.125, 3.0, 5.0]);
        HSwishConfig::new()
            .init()
            .forward(x)
            .into_data()
            .assert_approx_eq::<f32>(&expected_swish, Tolerance::absolute(1e-6));
    }
}
