//! `ipfs`: the results directory (stdout, stderr, exitCode, one folder per result path) is
//! added to the node's block store as a UnixFS directory with Kubo's defaults and pinned; the
//! result is upstream's `{Type: ipfs, Params: {CID: ...}}`. The node serves its blocks, and
//! `job get` fetches them by CID and checks every one.

use bacalhau_compute::executor::BoxFuture;
use bacalhau_compute::{PublishError, PublishRequest, Published, Publisher};
use bacalhau_content::{BlockStore, CidVersion};
use bacalhau_models::SpecConfig;

/// Publishes into the node's block store.
pub struct IpfsPublisher {
    store: BlockStore,
}

impl IpfsPublisher {
    pub fn new(store: BlockStore) -> Self {
        Self { store }
    }
}

impl Publisher for IpfsPublisher {
    fn publisher_type(&self) -> &'static str {
        "ipfs"
    }

    fn check(&self, _spec: &SpecConfig) -> Result<(), PublishError> {
        Ok(())
    }

    fn publish<'a>(
        &'a self,
        request: PublishRequest<'a>,
    ) -> BoxFuture<'a, Result<Published, PublishError>> {
        Box::pin(async move {
            let store = self.store.clone();
            let results = request.results_dir.to_path_buf();
            let added = tokio::task::spawn_blocking(move || {
                bacalhau_content::import(&store, &results, CidVersion::V0)
            })
            .await
            .map_err(|e| PublishError::Failed(e.to_string()))?
            .map_err(|e| PublishError::Failed(e.to_string()))?;
            let mut result = SpecConfig::of_type("ipfs");
            result
                .params
                .insert("CID".into(), added.root.to_string().into());
            Ok(Published {
                result: Some(result),
                bytes: added.bytes,
            })
        })
    }
}
