//! The `tokio` feature: a background task that purges expired sessions.

use std::time::Duration;

use crate::SessionRegistry;

impl<V: Send + Sync + 'static> SessionRegistry<V> {
    /// Spawns a task on the current tokio runtime that calls
    /// [`purge_expired`](Self::purge_expired) every `every` (at least 1 ms;
    /// shorter values are raised to 1 ms). The task holds only a weak
    /// reference: it ends on its own once the last registry handle is
    /// dropped. Abort the returned handle to stop it sooner.
    ///
    /// # Errors
    ///
    /// Returns the error of [`tokio::runtime::Handle::try_current`] when
    /// called outside a tokio runtime (instead of panicking like
    /// `tokio::spawn`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use mcp_session_core::SessionRegistry;
    ///
    /// let registry = SessionRegistry::<()>::builder()
    ///     .idle_timeout(Duration::from_secs(300))
    ///     .build()
    ///     .unwrap();
    /// let reaper = registry.spawn_reaper(Duration::from_millis(5)).unwrap();
    /// drop(registry);
    /// reaper.await.unwrap(); // ends by itself once the registry is gone
    /// # }
    /// ```
    pub fn spawn_reaper(
        &self,
        every: Duration,
    ) -> Result<tokio::task::JoinHandle<()>, tokio::runtime::TryCurrentError> {
        let runtime = tokio::runtime::Handle::try_current()?;
        let weak = self.downgrade();
        let every = every.max(Duration::from_millis(1));
        Ok(runtime.spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                SessionRegistry::from_inner(inner).purge_expired();
            }
        }))
    }
}
