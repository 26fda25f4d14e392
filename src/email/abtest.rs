//! A/B tests: which variant a contact gets (stable: the same contact, the same
//! campaign, the same bucket), and whether a variant won (a two-proportion
//! z-test at p < 0.05 between the best and the runner-up, each with at least the
//! minimum sample; otherwise no winner, and the default variant goes out).

/// The significance level a winner must reach.
pub const ALPHA: f64 = 0.05;

/// One variant's result: recipients and successes (clicks or opens).
#[derive(Debug, Clone, PartialEq)]
pub struct Arm {
    pub id: String,
    pub sent: u64,
    pub successes: u64,
}

/// The two-sided p-value of a two-proportion z-test.
pub fn p_value(a: &Arm, b: &Arm) -> f64 {
    if a.sent == 0 || b.sent == 0 {
        return 1.0;
    }
    let (n1, n2) = (a.sent as f64, b.sent as f64);
    let (p1, p2) = (a.successes as f64 / n1, b.successes as f64 / n2);
    let pooled = (a.successes + b.successes) as f64 / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return 1.0;
    }
    let z = ((p1 - p2) / se).abs();
    2.0 * (1.0 - normal_cdf(z))
}

/// The standard normal CDF through erf (Abramowitz and Stegun 7.1.26, error
/// below 1.5e-7: far finer than a 0.05 threshold needs).
fn normal_cdf(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    let erf = if x < 0.0 { -erf } else { erf };
    0.5 * (1.0 + erf)
}

/// The winner, if one variant did significantly better than every other and all
/// reached `min_sample` recipients.
pub fn winner(arms: &[Arm], min_sample: u64) -> Option<String> {
    if arms.len() < 2 || arms.iter().any(|a| a.sent < min_sample.max(1)) {
        return None;
    }
    let rate = |a: &Arm| a.successes as f64 / a.sent as f64;
    let best = arms.iter().max_by(|a, b| rate(a).total_cmp(&rate(b)))?;
    arms.iter()
        .filter(|a| a.id != best.id)
        .all(|a| rate(a) < rate(best) && p_value(best, a) < ALPHA)
        .then(|| best.id.clone())
}

/// The bucket (0..100) of a contact in a campaign, as the store computes it
/// when it freezes the recipients ([`bucket_sql`]).
pub fn bucket(contact_id: i64, seed: i64) -> i64 {
    ((contact_id % 100_003) * 48_271 + seed).rem_euclid(100)
}

/// The same bucket as SQL over `c.id` (the seed a parameter).
pub const BUCKET_SQL: &str = "(((c.id % 100003) * 48271 + ?) % 100)";

/// A campaign's seed from its id: stable, so a re-freeze assigns the same.
pub fn seed(campaign_key: &str) -> i64 {
    let h = crate::analytics::token::hmac_sha256(b"ab-seed", campaign_key.as_bytes());
    i64::from(u16::from_le_bytes([h[0], h[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(id: &str, sent: u64, successes: u64) -> Arm {
        Arm {
            id: id.into(),
            sent,
            successes,
        }
    }

    #[test]
    fn p_values_match_a_known_case() {
        // 200/1000 against 150/1000: z ≈ 2.95, p ≈ 0.0032 (two-sided).
        let p = p_value(&arm("a", 1000, 200), &arm("b", 1000, 150));
        assert!((p - 0.0032).abs() < 0.0003, "{p}");
        // Equal rates: no evidence at all.
        assert!((p_value(&arm("a", 500, 50), &arm("b", 500, 50)) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_winner_only_when_significant_and_sampled_enough() {
        let clear = [arm("a", 1000, 200), arm("b", 1000, 150)];
        assert_eq!(winner(&clear, 100).as_deref(), Some("a"));
        // The same rates on small samples are not significant.
        let small = [arm("a", 100, 20), arm("b", 100, 15)];
        assert_eq!(winner(&small, 50), None);
        // Significant, but short of the minimum sample.
        assert_eq!(winner(&clear, 2000), None);
        // With three arms the best must beat each of the others.
        let three = [
            arm("a", 1000, 200),
            arm("b", 1000, 150),
            arm("c", 1000, 195),
        ];
        assert_eq!(winner(&three, 100), None);
    }

    #[test]
    fn buckets_are_stable_and_spread_evenly() {
        let s = seed("december");
        assert_eq!(bucket(42, s), bucket(42, s));
        let mut counts = [0u32; 10];
        for id in 1..=10_000 {
            counts[usize::try_from(bucket(id, s) / 10).unwrap_or(0)] += 1;
        }
        assert!(
            counts.iter().all(|c| (900..=1100).contains(c)),
            "{counts:?}"
        );
    }
}
