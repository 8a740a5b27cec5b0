//! `noop`: results are dropped; the run's output is still in `RunOutput` and the node's logs.

use bacalhau_compute::executor::BoxFuture;
use bacalhau_compute::{PublishError, PublishRequest, Published, Publisher};
use bacalhau_models::SpecConfig;

/// Publishes nothing.
pub struct NoopPublisher;

impl Publisher for NoopPublisher {
    fn publisher_type(&self) -> &'static str {
        "noop"
    }

    fn check(&self, _spec: &SpecConfig) -> Result<(), PublishError> {
        Ok(())
    }

    fn publish<'a>(
        &'a self,
        _request: PublishRequest<'a>,
    ) -> BoxFuture<'a, Result<Published, PublishError>> {
        Box::pin(async {
            Ok(Published {
                result: None,
                bytes: 0,
            })
        })
    }
}
