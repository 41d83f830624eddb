//! Latency percentiles and throughput of a phase.

use std::time::Duration;

/// The nearest-rank percentile (`p` in 0..=100) of `samples`, which it sorts; `None` when empty.
pub fn percentile(samples: &mut [Duration], p: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    Some(samples[rank.clamp(1, samples.len()) - 1])
}

/// Events per second over `wall` (0 when no time passed).
pub fn per_second(count: u64, wall: Duration) -> f64 {
    let secs = wall.as_secs_f64();
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|v| Duration::from_millis(*v)).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples = ms(&(1..=100).rev().collect::<Vec<_>>());
        assert_eq!(percentile(&mut samples, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&mut samples, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&mut samples, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&mut samples, 0.0), Some(Duration::from_millis(1)));
        let mut one = ms(&[7]);
        assert_eq!(percentile(&mut one, 99.0), Some(Duration::from_millis(7)));
        assert_eq!(percentile(&mut [], 50.0), None);
    }

    #[test]
    fn a_single_slow_request_in_a_hundred_is_the_p99_but_not_the_p50() {
        let mut samples = ms(&[10; 99]);
        samples.push(Duration::from_secs(2));
        assert_eq!(percentile(&mut samples.clone(), 50.0), Some(Duration::from_millis(10)));
        assert_eq!(percentile(&mut samples.clone(), 99.0), Some(Duration::from_millis(10)));
        samples.push(Duration::from_secs(2));
        assert_eq!(percentile(&mut samples, 99.0), Some(Duration::from_secs(2)));
    }

    #[test]
    fn throughput_is_count_over_wall_time() {
        assert_eq!(per_second(500, Duration::from_secs(5)), 100.0);
        assert_eq!(per_second(5, Duration::ZERO), 0.0);
    }
}
