//! The weight-sharing supernet: every position holds the four choice blocks at their
//! maximum width; a forward pass runs one path, slicing each chosen block to the
//! genome's mid channels.

use burn::prelude::*;

use super::block::{ChoiceBlock, ChoiceBlockConfig};
use super::conv_bn::ConvBnAct;
use super::head::{Head, HeadConfig, StemConfig};
use super::norm::SlicedBatchNorm;
use super::subnet::ShuffleNasNet;
use crate::error::SpaceError;
use crate::genome::Architecture;
use crate::space::{NetworkPlan, SearchSpace};

/// Config of [`Supernet`].
#[derive(Config, Debug)]
pub struct SupernetConfig {
    /// The search space.
    pub space: SearchSpace,
    /// Batch-norm momentum (Burn convention, new-batch weight). The default 0.1 is
    /// PyTorch's; the original MXNet code's `momentum=0.1` is 0.9 here (see
    /// docs/seed-fidelity.md).
    #[config(default = 0.1)]
    pub bn_momentum: f64,
}

/// The four candidate blocks of one position.
#[derive(Module, Debug)]
pub struct ChoicePosition<B: Backend> {
    /// SNB-3, SNB-5, SNB-7, SXB-3, in id order.
    pub blocks: Vec<ChoiceBlock<B>>,
}

/// The supernet.
#[derive(Module, Debug)]
pub struct Supernet<B: Backend> {
    /// First conv.
    pub stem: ConvBnAct<B>,
    /// One entry per choice position.
    pub positions: Vec<ChoicePosition<B>>,
    /// Classification head.
    pub head: Head<B>,
    #[module(skip)]
    space: SearchSpace,
}

impl SupernetConfig {
    /// Builds the supernet on `device`.
    ///
    /// # Errors
    /// [`SpaceError`] for an invalid space.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Supernet<B>, SpaceError> {
        let slots = self.space.supernet_slots()?;
        // Stem and head do not depend on the genome.
        let plan = self.space.plan_with(Vec::new());
        let m = self.bn_momentum;
        Ok(Supernet {
            stem: StemConfig::new(plan.stem.clone()).with_bn_momentum(m).init(device),
            positions: slots
                .into_iter()
                .map(|blocks| ChoicePosition {
                    blocks: blocks
                        .into_iter()
                        .map(|b| ChoiceBlockConfig::new(b).with_bn_momentum(m).init(device))
                        .collect(),
                })
                .collect(),
            head: HeadConfig::new(plan.head.clone()).with_bn_momentum(m).init(device),
            space: self.space.clone(),
        })
    }
}

impl<B: Backend> Supernet<B> {
    /// The search space the supernet was built for.
    pub fn space(&self) -> &SearchSpace {
        &self.space
    }

    /// Runs the path of `arch`.
    ///
    /// # Errors
    /// [`SpaceError`] when the genome does not fit the space.
    ///
    /// # Shapes
    /// `[N, C_img, S, S]` → `[N, classes]`
    pub fn forward(&self, x: Tensor<B, 4>, arch: &Architecture) -> Result<Tensor<B, 2>, SpaceError> {
        Ok(self.forward_plan(x, &self.space.decode(arch)?, false))
    }

    /// Checks that `plan` is what this supernet's space decodes its genome to, as
    /// [`Supernet::forward_plan`] and [`Supernet::begin_recalibration`] assume (a few
    /// microseconds: the genome is decoded again and compared).
    ///
    /// # Errors
    /// [`SpaceError::ForeignPlan`] naming the first difference.
    pub fn check_plan(&self, plan: &NetworkPlan) -> Result<(), SpaceError> {
        let blocks: Vec<u8> = plan.blocks.iter().map(|b| b.choice.id()).collect();
        let channels: Vec<u8> = plan.blocks.iter().map(|b| b.channel.0).collect();
        let foreign = |what: String| Err(SpaceError::ForeignPlan(what));
        let Ok(arch) = Architecture::from_ids(&blocks, &channels) else {
            return foreign(format!("its {} blocks are not a genome", plan.blocks.len()));
        };
        let own = match self.space.decode(&arch) {
            Ok(own) => own,
            Err(e) => return foreign(e.to_string()),
        };
        if own.stem != plan.stem {
            return foreign("the first conv differs".into());
        }
        if let Some(i) = own.blocks.iter().zip(&plan.blocks).position(|(a, b)| a != b) {
            return foreign(format!("block {i} differs"));
        }
        if own.head != plan.head {
            return foreign("the head differs".into());
        }
        Ok(())
    }

    /// Runs a decoded path. With `use_all_blocks`, each position averages the outputs
    /// of its four blocks (each at the plan's mid width). Upstream's option of that name
    /// sums them, which multiplies the activations' scale by up to 4 per position; the
    /// mean keeps one block's scale (docs/seed-fidelity.md).
    ///
    /// # Panics
    /// When `plan` is not decoded from this supernet's space (`self.space().decode`):
    /// its widths would not fit the weights. [`Supernet::forward`] decodes the genome
    /// itself and returns an error instead; [`Supernet::check_plan`] checks a plan.
    pub fn forward_plan(&self, x: Tensor<B, 4>, plan: &NetworkPlan, use_all_blocks: bool) -> Tensor<B, 2> {
        let mut x = self.stem.forward(x, self.stem.max_out());
        for (position, block) in self.positions.iter().zip(&plan.blocks) {
            x = if use_all_blocks {
                let outputs: Vec<_> =
                    position.blocks.iter().map(|b| b.forward(x.clone(), block.mid_channels)).collect();
                let n = outputs.len() as f64;
                outputs.into_iter().reduce(|a, b| a.add(b)).map(|sum| sum.div_scalar(n)).unwrap_or(x)
            } else {
                position.blocks[block.choice.id() as usize].forward(x, block.mid_channels)
            };
        }
        self.head.forward(x)
    }

    /// A standalone fixed network for `arch` that inherits the sliced weights and BN
    /// statistics (copies: later training of either does not affect the other).
    ///
    /// # Errors
    /// [`SpaceError`] when the genome does not fit the space.
    pub fn extract(&self, arch: &Architecture) -> Result<ShuffleNasNet<B>, SpaceError> {
        let plan = self.space.decode(arch)?;
        let stem = self.stem.copied();
        let blocks = self
            .positions
            .iter()
            .zip(&plan.blocks)
            .map(|(position, block)| position.blocks[block.choice.id() as usize].narrowed(block.mid_channels))
            .collect();
        Ok(ShuffleNasNet { stem, blocks, head: self.head.copied() })
    }

    /// Visits the batch norms on the path of `plan` (stem, chosen blocks, head).
    pub fn for_each_bn_on_path(&self, plan: &NetworkPlan, f: &mut dyn FnMut(&SlicedBatchNorm<B>)) {
        self.stem.for_each_bn(f);
        for (position, block) in self.positions.iter().zip(&plan.blocks) {
            position.blocks[block.choice.id() as usize].for_each_bn(f);
        }
        self.head.for_each_bn(f);
    }

    /// Trainable parameters (Burn's `num_params` minus the BN running statistics).
    pub fn trainable_params(&self) -> usize {
        super::norm::trainable_params(self.num_params(), |count| self.for_each_bn(&mut |bn| count(bn.channels())))
    }

    /// Visits every batch norm of the supernet.
    pub fn for_each_bn(&self, f: &mut dyn FnMut(&SlicedBatchNorm<B>)) {
        self.stem.for_each_bn(f);
        for position in &self.positions {
            for block in &position.blocks {
                block.for_each_bn(f);
            }
        }
        self.head.for_each_bn(f);
    }
}

impl<B: Backend> Supernet<B> {
    /// Starts a BN recalibration of the path of `plan` (see
    /// [`SlicedBatchNorm::begin_recalibration`]): run forward passes of that path on an
    /// inference backend, then call [`Supernet::finish_recalibration`].
    pub fn begin_recalibration(&self, plan: &NetworkPlan) {
        self.for_each_bn_on_path(plan, &mut |bn| bn.begin_recalibration());
    }

    /// Ends the recalibration of the path of `plan`: its BN layers take the exact
    /// statistics of everything seen since [`Supernet::begin_recalibration`].
    pub fn finish_recalibration(&self, plan: &NetworkPlan) {
        self.for_each_bn_on_path(plan, &mut |bn| bn.finish_recalibration());
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{AutodiffModule, Param};
    use burn::optim::GradientsParams;
    use burn::prelude::*;
    use burn::tensor::Distribution;

    use super::*;
    use crate::BlockChoice;
    use crate::nn::tests::TestBackend;

    type Inner = <TestBackend as burn::tensor::backend::AutodiffBackend>::InnerBackend;

    fn tiny_space() -> SearchSpace {
        // Every channel id, so that the narrowest widths are exercised too.
        SearchSpace { searchable_min_id: 0, ..SearchSpace::tiny(3, 10) }
    }

    fn input<B: Backend>(n: usize, seed: u64) -> Tensor<B, 4> {
        let device = Default::default();
        B::seed(&device, seed);
        Tensor::random([n, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device)
    }

    fn supernet(seed: u64) -> Supernet<TestBackend> {
        let device = Default::default();
        TestBackend::seed(&device, seed);
        SupernetConfig::new(tiny_space()).init(&device).unwrap()
    }

    fn max_relative_error(a: Tensor<Inner, 2>, b: Tensor<Inner, 2>) -> f32 {
        let scale = b.clone().abs().max().into_scalar().max(1e-6);
        a.sub(b).abs().max().into_scalar() / scale
    }

    // A plan of another space (other widths, a wider channel rule, another head) is
    // refused before it can reach the weights; the supernet's own plans pass.
    #[test]
    fn plans_of_another_space_are_refused() {
        let net = supernet(1);
        let arch = Architecture::random_seeded(&tiny_space(), 3);
        net.check_plan(&tiny_space().decode(&arch).unwrap()).unwrap();
        let others = [
            SearchSpace { searchable_min_id: 0, ..SearchSpace::tiny(4, 10) },
            SearchSpace { num_classes: 7, ..tiny_space() },
            SearchSpace { use_se: false, ..tiny_space() },
        ];
        for other in others {
            let plan = other.decode(&arch).unwrap();
            let err = net.check_plan(&plan).unwrap_err();
            assert!(matches!(err, SpaceError::ForeignPlan(_)), "{err}");
        }
        let mut short = tiny_space().decode(&arch).unwrap();
        short.blocks.pop();
        assert!(matches!(net.check_plan(&short), Err(SpaceError::ForeignPlan(_))));
    }

    // Search ranks subnets by the supernet's accuracy, and the final network may start
    // from the supernet's weights: both must compute the same function.
    #[test]
    fn extracted_subnet_matches_the_supernet_path_in_eval_mode() {
        let supernet = supernet(1);
        // A few training steps so that the running statistics are not the init values.
        for step in 0..2 {
            let arch = Architecture::random_seeded(&tiny_space(), 100 + step);
            let _ = supernet.forward(input(4, step), &arch).unwrap();
        }
        let eval = supernet.valid();
        for seed in 0..4 {
            let arch = Architecture::random_seeded(&tiny_space(), seed);
            let x = input::<Inner>(2, 7);
            let from_supernet = eval.forward(x.clone(), &arch).unwrap();
            let subnet = eval.extract(&arch).unwrap();
            let from_subnet = subnet.forward(x);
            let err = max_relative_error(from_subnet, from_supernet);
            assert!(err < 1e-5, "genome {arch}: relative error {err}");
        }
    }

    // Fine-tuning the extracted network on the training backend (the once-for-all
    // workflow): its weights are leaves of its own, every one gets a gradient, and the
    // supernet's weights get none.
    #[test]
    fn an_extracted_subnet_trains_on_its_own() {
        let supernet = supernet(5);
        let arch = Architecture::random_seeded(&tiny_space(), 2);
        let subnet = supernet.extract(&arch).unwrap();
        let subnet_folded = supernet.extract(&arch).unwrap().fuse_bn();
        for net in [subnet, subnet_folded] {
            let loss = net.forward(input(2, 3)).powi_scalar(2).mean();
            let raw = loss.backward();
            // The supernet is not in the extracted net's graph.
            assert!(supernet.stem.conv.weight.val().grad(&raw).is_none());
            let grads = GradientsParams::from_grads(raw, &net);
            // (trainable parameters, those of them without a gradient)
            struct Check<'a>(&'a GradientsParams, usize, usize);
            impl burn::module::ModuleVisitor<TestBackend> for Check<'_> {
                fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<TestBackend, D>>) {
                    if param.val().is_require_grad() {
                        self.1 += 1;
                        self.2 += usize::from(self.0.get::<Inner, D>(param.id).is_none());
                    }
                }
            }
            let mut check = Check(&grads, 0, 0);
            net.visit(&mut check);
            assert!(check.1 > 40, "only {} trainable parameters", check.1);
            assert_eq!(check.2, 0, "parameters of the extracted net without a gradient");
        }
    }

    // The supernet's unused blocks must not move, and a chosen block only learns in its
    // active slice, as upstream's ignore_stale_grad.
    #[test]
    fn gradients_reach_only_the_active_path_and_slice() {
        let supernet = supernet(2);
        let arch = Architecture::random_seeded(&tiny_space(), 3);
        let plan = tiny_space().decode(&arch).unwrap();
        let loss = supernet.forward(input(2, 1), &arch).unwrap().powi_scalar(2).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &supernet);
        let grad4 = |p: &Param<Tensor<TestBackend, 4>>| grads.get::<Inner, 4>(p.id);
        for (position, (blocks, block_plan)) in supernet.positions.iter().zip(&plan.blocks).enumerate() {
            for block in &blocks.blocks {
                let first = &block.main[0].conv.weight;
                if block.choice() != block_plan.choice {
                    assert!(grad4(first).is_none(), "unused block at {position} got a gradient");
                    continue;
                }
                let mid = block_plan.mid_channels;
                // SNB: the expanding 1×1 conv; SXB: the first 1×1 conv (unit 1).
                let expand = if block.choice() == BlockChoice::Sxb3 { &block.main[1] } else { &block.main[0] };
                let g = grad4(&expand.conv.weight).expect("used block has a gradient");
                let rows = g.dims()[0];
                assert!(g.clone().slice([0..mid]).abs().sum().into_scalar() > 0.0, "position {position}");
                if mid < rows {
                    let unused = g.slice([mid..rows]).abs().max().into_scalar();
                    assert_eq!(unused, 0.0, "position {position}: gradient outside the slice");
                }
                let bn = expand.bn.as_ref().unwrap();
                let g_gamma = grads.get::<Inner, 1>(bn.gamma.id).unwrap();
                if mid < rows {
                    assert_eq!(g_gamma.slice([mid..rows]).abs().max().into_scalar(), 0.0);
                }
            }
        }
    }

    // Training a path updates only the running statistics of its active channels.
    #[test]
    fn training_updates_only_the_active_running_statistics() {
        let supernet = supernet(3);
        let mut arch = Architecture::random_seeded(&tiny_space(), 5);
        arch.blocks[1] = BlockChoice::Snb5;
        arch.channels[1] = crate::ChannelChoice(0);
        let plan = tiny_space().decode(&arch).unwrap();
        let block = &supernet.positions[1].blocks[1];
        let bn = block.main[0].bn.as_ref().unwrap();
        let before = bn.running_mean.value_sync();
        let _ = supernet.forward(input(4, 2), &arch).unwrap();
        let after = bn.running_mean.value_sync();
        let mid = plan.blocks[1].mid_channels;
        let c = after.dims()[0];
        assert!(after.clone().slice([0..mid]).sub(before.clone().slice([0..mid])).abs().sum().into_scalar() > 0.0);
        assert_eq!(after.slice([mid..c]).sub(before.slice([mid..c])).abs().max().into_scalar(), 0.0);
    }

    // The accumulation is exact: splitting the same images into batches of 1, 2, 4 or
    // 8 gives the same statistics at the first BN (whose input does not depend on
    // normalisation upstream), and statistics close to each other deeper in.
    #[test]
    fn recalibration_does_not_depend_on_the_batch_size() {
        let eval = supernet(4).valid();
        let arch = Architecture::random_seeded(&tiny_space(), 9);
        let plan = tiny_space().decode(&arch).unwrap();
        let images = input::<Inner>(8, 11);
        let mut results = Vec::new();
        for batch in [1, 2, 4, 8] {
            eval.begin_recalibration(&plan);
            for start in (0..8).step_by(batch) {
                let _ = eval.forward_plan(images.clone().slice([start..start + batch]), &plan, false);
            }
            eval.finish_recalibration(&plan);
            let stem = eval.stem.bn.as_ref().unwrap();
            results.push((stem.running_mean.value_sync(), stem.running_var.value_sync()));
        }
        let (mean0, var0) = &results[0];
        for (mean, var) in &results[1..] {
            assert!(mean.clone().sub(mean0.clone()).abs().max().into_scalar() < 1e-5);
            assert!(var.clone().sub(var0.clone()).abs().max().into_scalar() < 1e-4);
        }
        // The recalibrated statistics are the exact ones of the stem's output.
        let stem_out = eval.stem.conv.forward(images.clone(), eval.stem.max_out());
        let [n, c, h, w] = stem_out.dims();
        let flat = stem_out.clone().swap_dims(0, 1).reshape([c, n * h * w]);
        let (var, mean) = flat.var_mean_bias(1);
        assert!(mean.reshape([c]).sub(mean0.clone()).abs().max().into_scalar() < 1e-5);
        assert!(var.reshape([c]).sub(var0.clone()).abs().max().into_scalar() < 1e-4);
        // And the eval forward uses fresh statistics right away: recalibrate once more
        // and, before anything reads them, check that the normalised output of the same
        // images has per-channel mean beta (Burn's `RunningState::value` serves the
        // previous value after an `update` until something syncs it).
        eval.begin_recalibration(&plan);
        let _ = eval.forward_plan(images.clone().slice([0..4]), &plan, false);
        eval.finish_recalibration(&plan);
        eval.begin_recalibration(&plan);
        let _ = eval.forward_plan(images, &plan, false);
        eval.finish_recalibration(&plan);
        let bn = eval.stem.bn.as_ref().unwrap();
        let normalised = bn.forward(stem_out).swap_dims(0, 1).reshape([c, n * h * w]).mean_dim(1).reshape([c]);
        assert!(normalised.sub(bn.beta.val()).abs().max().into_scalar() < 1e-4);
    }

    // The upstream supernet with SE and the MobileNetV3 head has 17,180,248 trainable
    // parameters; the analytic counter agrees (see tests/micronet_targets.rs).
    #[test]
    fn supernet_parameter_count_matches_the_counter() {
        let device = Default::default();
        for space in [SearchSpace::oneshot_plus(), SearchSpace::oneshot_original(), tiny_space()] {
            let net = SupernetConfig::new(space.clone()).init::<Inner>(&device).unwrap();
            let expected = crate::cost::supernet_ops(&space).unwrap().counts(&Default::default()).trainable_params;
            assert_eq!(net.trainable_params() as u64, expected);
        }
    }

    #[test]
    fn use_all_blocks_averages_the_four_choices() {
        let eval = supernet(5).valid();
        let arch = Architecture::random_seeded(&tiny_space(), 1);
        let plan = tiny_space().decode(&arch).unwrap();
        let logits = eval.forward_plan(input::<Inner>(2, 3), &plan, true);
        assert_eq!(logits.dims(), [2, 10]);
        let single = eval.forward_plan(input::<Inner>(2, 3), &plan, false);
        assert!(max_relative_error(logits, single) > 1e-3);
    }

    #[test]
    fn a_genome_of_the_wrong_length_is_an_error_not_a_panic() {
        let eval = supernet(6).valid();
        let short = Architecture::uniform(3, BlockChoice::Snb3, crate::ChannelChoice(2));
        assert!(eval.forward(input::<Inner>(1, 0), &short).is_err());
        assert!(eval.extract(&short).is_err());
    }
}
