//! The first conv and the two classification heads.

use burn::nn::{Dropout, DropoutConfig};
use burn::prelude::*;

use super::conv::{ConvInit, SlicedConv2dConfig};
use super::conv_bn::{ConvBnAct, ConvBnActConfig, biased_pointwise};
use super::norm::SlicedBatchNorm;
use crate::space::{HeadPlan, StemPlan};

/// Config of the first conv: 3×3 (stride), BN, activation.
#[derive(Config, Debug)]
pub struct StemConfig {
    /// The decoded stem.
    pub plan: StemPlan,
    /// Batch-norm momentum (Burn convention).
    #[config(default = 0.1)]
    pub bn_momentum: f64,
}

impl StemConfig {
    /// Builds the stem unit on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> ConvBnAct<B> {
        let p = &self.plan;
        let conv =
            SlicedConv2dConfig::new(p.in_channels, p.out_channels, 3).with_stride(p.stride).with_init(ConvInit::Small);
        ConvBnActConfig::new(conv).with_activation(Some(p.activation)).with_bn_momentum(self.bn_momentum).init(device)
    }
}

/// Config of [`Head`].
#[derive(Config, Debug)]
pub struct HeadConfig {
    /// The decoded head.
    pub plan: HeadPlan,
    /// Batch-norm momentum (Burn convention).
    #[config(default = 0.1)]
    pub bn_momentum: f64,
}

/// The classification head:
/// - MobileNetV3 (`after_pooling`): pool → 1×1 conv with bias → act → dropout → classifier;
/// - original: 1×1 conv → BN → act → pool → dropout → classifier.
#[derive(Module, Debug)]
pub struct Head<B: Backend> {
    /// The last 1×1 conv (with BN in the original head).
    pub last_conv: ConvBnAct<B>,
    /// Dropout before the classifier.
    pub dropout: Dropout,
    /// 1×1 conv classifier with bias.
    pub classifier: ConvBnAct<B>,
    /// Pool before (MobileNetV3) or after (original) the last conv.
    pub after_pooling: bool,
}

impl HeadConfig {
    /// Builds the head on `device`.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Head<B> {
        let p = &self.plan;
        let last_conv = if p.after_pooling {
            biased_pointwise(p.in_channels, p.last_conv_channels, Some(p.activation)).init(device)
        } else {
            let conv = SlicedConv2dConfig::new(p.in_channels, p.last_conv_channels, 1).with_init(ConvInit::Small);
            ConvBnActConfig::new(conv)
                .with_activation(Some(p.activation))
                .with_bn_momentum(self.bn_momentum)
                .init(device)
        };
        Head {
            last_conv,
            dropout: DropoutConfig::new(p.dropout).init(),
            classifier: biased_pointwise(p.last_conv_channels, p.num_classes, None).init(device),
            after_pooling: p.after_pooling,
        }
    }
}

fn global_pool<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    x.mean_dim(3).mean_dim(2)
}

impl<B: Backend> Head<B> {
    /// Logits.
    ///
    /// # Shapes
    /// `[N, C, H, W]` → `[N, classes]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let width = self.last_conv.max_out();
        let x = if self.after_pooling {
            self.last_conv.forward(global_pool(x), width)
        } else {
            global_pool(self.last_conv.forward(x, width))
        };
        let x = self.dropout.forward(x);
        let logits = self.classifier.forward(x, self.classifier.max_out());
        let [n, classes, _, _] = logits.dims();
        logits.reshape([n, classes])
    }

    /// A standalone copy with fresh ids and statistics.
    pub fn copied(&self) -> Self {
        Self {
            last_conv: self.last_conv.copied(),
            dropout: self.dropout.clone(),
            classifier: self.classifier.copied(),
            after_pooling: self.after_pooling,
        }
    }

    /// Folds the BN (original head) into the last conv.
    pub fn fuse_bn(self) -> Self {
        Self { last_conv: self.last_conv.fuse_bn(), ..self }
    }

    /// Visits the batch norm of the original head.
    pub fn for_each_bn(&self, f: &mut dyn FnMut(&SlicedBatchNorm<B>)) {
        self.last_conv.for_each_bn(f);
    }
}
