//! Awaiting several futures at once without an executor (a Worker's isolate has one thread; its runtime
//! makes the outbound calls concurrent). Smaller in wasm than `futures::future::join_all`, whose general
//! case (more than 30 futures) brings a whole unordered set with its own wakers; every worker has a size
//! budget.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Every future's output, in order, once all are done.
pub async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    // All are `Some` here: the loop above only ends when none is pending.
    outputs.into_iter().flatten().collect()
}

/// Runs `work` on every item, `at_once` at a time (a wave starts when the one before it has finished),
/// bounding how many are in flight: the fan-out relay's pacing ([`crate::scheduled::RELAY_CONCURRENCY`]).
/// The outputs in order.
pub async fn in_waves<T, F: Future>(items: &[T], at_once: usize, work: impl Fn(&T) -> F) -> Vec<F::Output> {
    let mut outputs = Vec::with_capacity(items.len());
    for wave in items.chunks(at_once.max(1)) {
        outputs.extend(join_all(wave.iter().map(&work)).await);
    }
    outputs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outputs_come_in_order_whatever_order_the_futures_finish_in() {
        let delays = [30u64, 0, 10];
        let outputs = join_all(delays.iter().map(|&ms| async move {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            ms
        }))
        .await;
        assert_eq!(outputs, vec![30, 0, 10]);
        assert!(join_all(Vec::<std::future::Ready<u8>>::new()).await.is_empty());
    }

    #[tokio::test]
    async fn the_futures_run_at_once_not_one_after_the_other() {
        let started = std::time::Instant::now();
        join_all((0..20).map(|_| tokio::time::sleep(std::time::Duration::from_millis(50)))).await;
        assert!(started.elapsed() < std::time::Duration::from_millis(500), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn waves_never_run_more_than_their_size_at_once_and_keep_the_order() {
        let running = std::sync::atomic::AtomicUsize::new(0);
        let peak = std::sync::atomic::AtomicUsize::new(0);
        let items: Vec<u64> = (0..12).collect();
        let outputs = in_waves(&items, 5, |&i| {
            let (running, peak) = (&running, &peak);
            async move {
                let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                peak.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(10 + (12 - i))).await;
                running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                i * 2
            }
        })
        .await;
        assert_eq!(outputs, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 5, "at most one wave in flight");
    }
}
