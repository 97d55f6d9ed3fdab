//! BN recalibration: exact statistics of a path over a fixed set of training images.

use burn::prelude::*;
use shufflenas_model::NetworkPlan;
use shufflenas_model::nn::Supernet;

use crate::data::BatchLoader;
use crate::trainer::TrainError;

/// Recalibrates the BN layers on `path` of an inference-backend supernet with the
/// first `images` images of `data` (epoch 0 order; use an evaluation transform and no
/// shuffling for a fixed image set). The statistics are the exact mean and variance of
/// everything seen (see `SlicedBatchNorm`), so the same images give the same result.
///
/// # Errors
/// [`TrainError::Data`] when a batch cannot be read, [`TrainError::InputChannels`] for
/// images the supernet does not take, [`TrainError::Space`] for a path decoded from
/// another space.
pub fn recalibrate_supernet<B: Backend>(
    supernet: &Supernet<B>,
    path: &NetworkPlan,
    data: &BatchLoader,
    images: usize,
) -> Result<(), TrainError> {
    supernet.check_plan(path)?;
    let device = supernet.stem.conv.weight.device();
    supernet.begin_recalibration(path);
    let mut seen = 0;
    for batch in data.epoch(0) {
        if seen >= images {
            break;
        }
        let batch = batch?;
        crate::trainer::check_channels(batch.shape, supernet.stem.in_channels())?;
        let (x, _) = batch.to_tensors::<B>(&device);
        let take = (images - seen).min(batch.labels.len());
        let x = if take < batch.labels.len() { x.slice([0..take]) } else { x };
        let _ = supernet.forward_plan(x, path, false);
        seen += take;
    }
    supernet.finish_recalibration(path);
    Ok(())
}
