//! A webhook body whose signature was checked.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Sellapp,
    Stripe,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sellapp => "sellapp",
            Self::Stripe => "stripe",
        }
    }
}

/// The raw body of a delivery whose signature was verified. Its fields are private: only the verifiers
/// of this crate make one, plus [`VerifiedEvent::from_recorded_failure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent {
    provider: Provider,
    body: Vec<u8>,
}

impl VerifiedEvent {
    pub(crate) fn new(provider: Provider, body: &[u8]) -> Self {
        Self { provider, body: body.to_vec() }
    }

    /// For a body Tollgate itself verified earlier and stored verbatim in its own `webhook_failures`
    /// record (retry and replay). Never for request data.
    pub fn from_recorded_failure(provider: Provider, body: Vec<u8>) -> Self {
        Self { provider, body }
    }

    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The exact bytes the provider signed.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}
