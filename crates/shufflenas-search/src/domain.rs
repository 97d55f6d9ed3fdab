//! Which genes the search may change: per position, the allowed block choices and
//! channel ids. Holding the blocks (or channels) of a genome fixed gives upstream's
//! `--fixed-block-choices` / `--fixed-channel-choices` searches.

use rand::Rng;
use serde::{Deserialize, Serialize};
use shufflenas_model::{Architecture, BlockChoice, ChannelChoice, SearchSpace};

use crate::SearchError;

/// The set of genomes a search explores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenomeDomain {
    /// Allowed block choices per position.
    pub blocks: Vec<Vec<BlockChoice>>,
    /// Allowed channel ids per position.
    pub channels: Vec<Vec<ChannelChoice>>,
}

impl GenomeDomain {
    /// Every block choice and the space's searchable channel ids at every position.
    pub fn of(space: &SearchSpace) -> Self {
        let n = space.num_blocks();
        let ids: Vec<ChannelChoice> =
            space.searchable_channel_ids().into_iter().map(|id| ChannelChoice(id as u8)).collect();
        Self { blocks: vec![BlockChoice::ALL.to_vec(); n], channels: vec![ids; n] }
    }

    /// Holds the block genes at those of `arch` (a channel-only search).
    ///
    /// # Errors
    /// [`SearchError::Domain`] when `arch` has the wrong length.
    pub fn with_fixed_blocks(mut self, arch: &Architecture) -> Result<Self, SearchError> {
        self.check_len(arch)?;
        self.blocks = arch.blocks.iter().map(|&b| vec![b]).collect();
        Ok(self)
    }

    /// Holds the channel genes at those of `arch` (a block-only search).
    ///
    /// # Errors
    /// [`SearchError::Domain`] when `arch` has the wrong length.
    pub fn with_fixed_channels(mut self, arch: &Architecture) -> Result<Self, SearchError> {
        self.check_len(arch)?;
        self.channels = arch.channels.iter().map(|&c| vec![c]).collect();
        Ok(self)
    }

    fn check_len(&self, arch: &Architecture) -> Result<(), SearchError> {
        if arch.len() != self.blocks.len() {
            return Err(SearchError::Domain(format!(
                "the fixed genome has {} genes per list, the space {}",
                arch.len(),
                self.blocks.len()
            )));
        }
        Ok(())
    }

    /// Checks that the domain has `positions` positions in both lists, each with at
    /// least one allowed value (sampling draws from every list).
    ///
    /// # Errors
    /// [`SearchError::Domain`] naming the list and position.
    pub fn check(&self, positions: usize) -> Result<(), SearchError> {
        for (name, len) in [("block", self.blocks.len()), ("channel", self.channels.len())] {
            if len != positions {
                return Err(SearchError::Domain(format!(
                    "the domain has {len} {name} positions, the space {positions}"
                )));
            }
        }
        let empty_block = self.blocks.iter().position(Vec::is_empty).map(|p| ("block", p));
        let empty_channel = self.channels.iter().position(Vec::is_empty).map(|p| ("channel", p));
        match empty_block.or(empty_channel) {
            Some((name, position)) => {
                Err(SearchError::Domain(format!("the domain allows no {name} choice at position {position}")))
            }
            None => Ok(()),
        }
    }

    /// Number of positions.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether the domain has no positions.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Number of genomes in the domain.
    pub fn size(&self) -> f64 {
        self.blocks.iter().zip(&self.channels).map(|(b, c)| (b.len() * c.len()) as f64).product()
    }

    /// Whether every gene of `arch` is allowed.
    pub fn contains(&self, arch: &Architecture) -> bool {
        arch.len() == self.len()
            && arch.blocks.iter().zip(&self.blocks).all(|(b, allowed)| allowed.contains(b))
            && arch.channels.iter().zip(&self.channels).all(|(c, allowed)| allowed.contains(c))
    }

    /// A uniformly random genome of the domain.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Architecture {
        let blocks = self.blocks.iter().map(|allowed| allowed[rng.random_range(0..allowed.len())]).collect();
        let channels = self.channels.iter().map(|allowed| allowed[rng.random_range(0..allowed.len())]).collect();
        Architecture { blocks, channels }
    }

    /// `arch` with one gene redrawn: a uniformly chosen position, its block or its
    /// channel (a fair coin), from the allowed set. A symmetric proposal: a walk that
    /// keeps only feasible steps samples a feasible set uniformly in the limit.
    pub fn redraw_one<R: Rng + ?Sized>(&self, arch: &Architecture, rng: &mut R) -> Architecture {
        let mut next = arch.clone();
        let i = rng.random_range(0..self.len());
        if rng.random_bool(0.5) {
            next.blocks[i] = self.blocks[i][rng.random_range(0..self.blocks[i].len())];
        } else {
            next.channels[i] = self.channels[i][rng.random_range(0..self.channels[i].len())];
        }
        next
    }

    /// Uniform crossover (each gene from either parent), then per-gene mutation with
    /// probability `mutate` (a fresh uniform draw from the allowed set).
    pub fn breed<R: Rng + ?Sized>(
        &self,
        mother: &Architecture,
        father: &Architecture,
        mutate: f64,
        rng: &mut R,
    ) -> Architecture {
        let mut child =
            Architecture { blocks: Vec::with_capacity(self.len()), channels: Vec::with_capacity(self.len()) };
        for i in 0..self.len() {
            let block = if rng.random_bool(0.5) { mother.blocks[i] } else { father.blocks[i] };
            let channel = if rng.random_bool(0.5) { mother.channels[i] } else { father.channels[i] };
            child.blocks.push(block);
            child.channels.push(channel);
        }
        for i in 0..self.len() {
            if rng.random::<f64>() < mutate {
                child.blocks[i] = self.blocks[i][rng.random_range(0..self.blocks[i].len())];
            }
            if rng.random::<f64>() < mutate {
                child.channels[i] = self.channels[i][rng.random_range(0..self.channels[i].len())];
            }
        }
        child
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn samples_and_children_stay_in_the_domain() {
        let space = SearchSpace::oneshot_plus();
        let domain = GenomeDomain::of(&space);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let a = domain.sample(&mut rng);
        let b = domain.sample(&mut rng);
        assert!(domain.contains(&a) && domain.contains(&b));
        for _ in 0..100 {
            assert!(domain.contains(&domain.breed(&a, &b, 0.5, &mut rng)));
        }
        assert!(!domain.contains(&Architecture::uniform(20, BlockChoice::Snb3, ChannelChoice(0))));
        assert_eq!(domain.size(), 32f64.powi(20));
    }

    #[test]
    fn crossover_without_mutation_takes_each_gene_from_a_parent() {
        let domain = GenomeDomain::of(&SearchSpace::oneshot_plus());
        let a = Architecture::uniform(20, BlockChoice::Snb3, ChannelChoice(2));
        let b = Architecture::uniform(20, BlockChoice::Sxb3, ChannelChoice(9));
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let child = domain.breed(&a, &b, 0.0, &mut rng);
        assert!(child.blocks.iter().all(|&x| x == BlockChoice::Snb3 || x == BlockChoice::Sxb3));
        assert!(child.channels.iter().all(|&x| x.0 == 2 || x.0 == 9));
        assert!(child != a && child != b, "20 fair coin flips mix both parents");
    }

    #[test]
    fn fixed_genes_never_change() {
        let space = SearchSpace::oneshot_plus();
        let fixed = Architecture::oneshot_s_plus();
        let domain = GenomeDomain::of(&space).with_fixed_blocks(&fixed).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..20 {
            assert_eq!(domain.sample(&mut rng).blocks, fixed.blocks);
        }
        let domain = GenomeDomain::of(&space).with_fixed_channels(&fixed).unwrap();
        let child = domain.breed(&domain.sample(&mut rng), &domain.sample(&mut rng), 1.0, &mut rng);
        assert_eq!(child.channels, fixed.channels);
        let short = Architecture::uniform(3, BlockChoice::Snb3, ChannelChoice(2));
        assert!(matches!(GenomeDomain::of(&space).with_fixed_blocks(&short), Err(SearchError::Domain(_))));
    }

    // Sampling would index an empty list: the check names it first.
    #[test]
    fn a_domain_with_an_empty_or_missing_list_is_refused() {
        let domain = GenomeDomain::of(&SearchSpace::oneshot_plus());
        assert!(domain.check(20).is_ok());
        assert!(domain.check(19).unwrap_err().to_string().contains("20 block positions, the space 19"));
        let mut short = domain.clone();
        short.channels.pop();
        assert!(short.check(20).unwrap_err().to_string().contains("19 channel positions"));
        let mut empty = domain;
        empty.channels[7].clear();
        assert!(empty.check(20).unwrap_err().to_string().contains("no channel choice at position 7"));
    }
}
