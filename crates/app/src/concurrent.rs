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
}
