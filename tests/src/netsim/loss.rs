//! Random draws for loss: independent coin flips and Gilbert-Elliott bursts.

use rand::Rng;

/// Gilbert-Elliott burst loss: a two-state Markov chain stepped once per
/// datagram, with a loss probability per state.
///
/// Before each datagram the chain moves good → bad with `p_good_to_bad`, or
/// bad → good with `p_bad_to_good`; then the datagram is lost with the
/// probability of the state it is in. A stay in the bad state lasts
/// `1 / p_bad_to_good` datagrams on average, so with `loss_in_bad = 1.0` that
/// is the mean burst length; the long-run share of time spent bad is
/// `p_good_to_bad / (p_good_to_bad + p_bad_to_good)`.
///
/// All zero (the default) never loses anything.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GilbertElliott {
    /// Chance per datagram of moving from the good to the bad state.
    pub p_good_to_bad: f64,
    /// Chance per datagram of moving from the bad to the good state.
    pub p_bad_to_good: f64,
    /// Chance of losing a datagram in the good state.
    pub loss_in_good: f64,
    /// Chance of losing a datagram in the bad state.
    pub loss_in_bad: f64,
}

impl GilbertElliott {
    /// Panics naming the field if a probability is outside `0.0..=1.0`.
    pub(super) fn validate(&self) {
        check_probability("burst.p_good_to_bad", self.p_good_to_bad);
        check_probability("burst.p_bad_to_good", self.p_bad_to_good);
        check_probability("burst.loss_in_good", self.loss_in_good);
        check_probability("burst.loss_in_bad", self.loss_in_bad);
    }
}

/// Where one directed link's Gilbert-Elliott chain is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct BurstState {
    bad: bool,
}

impl BurstState {
    /// Steps the chain for one datagram; true if that datagram is lost.
    pub(super) fn step(&mut self, model: &GilbertElliott, rng: &mut impl Rng) -> bool {
        let flip = if self.bad {
            model.p_bad_to_good
        } else {
            model.p_good_to_bad
        };
        if chance(rng, flip) {
            self.bad = !self.bad;
        }
        let loss = if self.bad {
            model.loss_in_bad
        } else {
            model.loss_in_good
        };
        chance(rng, loss)
    }
}

/// True with probability `p`.
///
/// Certain outcomes draw nothing, so a perfect link consumes no randomness
/// and adding one does not shift the draws of the lossy links.
pub(super) fn chance(rng: &mut impl Rng, p: f64) -> bool {
    if p <= 0.0 {
        false
    } else if p >= 1.0 {
        true
    } else {
        rng.random::<f64>() < p
    }
}

/// Panics unless `p` is a probability; `name` says which field it came from.
pub(super) fn check_probability(name: &str, p: f64) {
    assert!(
        (0.0..=1.0).contains(&p),
        "link config: {name} = {p} is not a probability in 0.0..=1.0"
    );
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn certain_outcomes_draw_nothing() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut untouched = rng.clone();
        assert!(!chance(&mut rng, 0.0));
        assert!(chance(&mut rng, 1.0));
        assert_eq!(rng.random::<u64>(), untouched.random::<u64>());
    }

    #[test]
    fn perfect_chain_never_loses() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut state = BurstState::default();
        let model = GilbertElliott::default();
        assert!((0..1_000).all(|_| !state.step(&model, &mut rng)));
    }

    #[test]
    fn bursts_last_one_over_p_bad_to_good() {
        let model = GilbertElliott {
            p_good_to_bad: 0.02,
            p_bad_to_good: 0.25,
            loss_in_good: 0.0,
            loss_in_bad: 1.0,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut state = BurstState::default();
        let (mut lost, mut bursts, mut in_burst) = (0u32, 0u32, false);
        let n = 200_000;
        for _ in 0..n {
            let l = state.step(&model, &mut rng);
            lost += u32::from(l);
            bursts += u32::from(l && !in_burst);
            in_burst = l;
        }
        let mean_burst = f64::from(lost) / f64::from(bursts);
        assert!((mean_burst - 4.0).abs() < 0.2, "mean burst {mean_burst}");
        let rate = f64::from(lost) / f64::from(n);
        let expected = 0.02 / 0.27;
        assert!((rate - expected).abs() < 0.005, "loss rate {rate}");
    }

    #[test]
    #[should_panic(expected = "burst.loss_in_bad")]
    fn out_of_range_probability_is_named() {
        GilbertElliott {
            loss_in_bad: 1.5,
            ..GilbertElliott::default()
        }
        .validate();
    }
}
