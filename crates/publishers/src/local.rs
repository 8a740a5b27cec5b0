//! `local`: the results become `<dir>/<execution ID>.tar.gz` on the node, served over HTTP (by
//! the binary, from `dir`) and returned as a `urlDownload` result pointing there, as upstream.

use bacalhau_compute::executor::BoxFuture;
use bacalhau_compute::{PublishError, PublishRequest, Published, Publisher};
use bacalhau_models::SpecConfig;
use std::path::PathBuf;

/// Keeps results on the node.
pub struct LocalPublisher {
    dir: PathBuf,
    base_url: String,
}

impl LocalPublisher {
    /// Archives go to `dir`, which is served at `base_url`.
    pub fn new(dir: PathBuf, base_url: String) -> Self {
        Self {
            dir,
            base_url: base_url.trim_end_matches('/').to_string(),
        }
    }
}

impl Publisher for LocalPublisher {
    fn publisher_type(&self) -> &'static str {
        "local"
    }

    fn check(&self, _spec: &SpecConfig) -> Result<(), PublishError> {
        Ok(())
    }

    fn publish<'a>(
        &'a self,
        request: PublishRequest<'a>,
    ) -> BoxFuture<'a, Result<Published, PublishError>> {
        Box::pin(async move {
            let name = format!("{}.tar.gz", request.execution.id);
            let dir = self.dir.clone();
            let results = request.results_dir.to_path_buf();
            let archive = dir.join(&name);
            let partial = dir.join(format!("{name}.partial"));
            let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
                std::fs::create_dir_all(&dir)?;
                // Written aside and renamed, so the server never hands out half an archive.
                let bytes = crate::archive::pack(&results, &partial)?;
                std::fs::rename(&partial, &archive)?;
                Ok(bytes)
            })
            .await
            .map_err(|e| PublishError::Failed(e.to_string()))?
            .map_err(|e| PublishError::Failed(format!("cannot archive the results: {e}")))?;
            let mut result = SpecConfig::of_type("urlDownload");
            result
                .params
                .insert("URL".into(), format!("{}/{name}", self.base_url).into());
            Ok(Published {
                result: Some(result),
                bytes,
            })
        })
    }
}
