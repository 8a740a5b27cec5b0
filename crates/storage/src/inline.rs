//! `inline` inputs: RFC 2397 `data:` URLs carried in the spec, base64 or percent-encoded.

use bacalhau_compute::executor::BoxFuture;
use bacalhau_compute::{InputError, InputRequest, InputStorage, PreparedInput};
use bacalhau_models::InputSource;

/// Writes `data:` URLs to files.
pub struct InlineStorage;

/// Decodes a `data:` URL (the model's decoder, which the content key also hashes through).
pub fn decode_data_url(url: &str) -> Result<Vec<u8>, InputError> {
    bacalhau_models::content::decode_data_url(url).map_err(|e| InputError::Invalid(e.to_string()))
}

fn url(input: &InputSource) -> Result<&str, InputError> {
    input.source.param_str("URL").ok_or_else(|| {
        InputError::Invalid(format!("inline input {} has no URL param", input.target))
    })
}

impl InputStorage for InlineStorage {
    fn types(&self) -> &'static [&'static str] {
        &["inline"]
    }

    fn check(&self, input: &InputSource) -> Result<(), InputError> {
        url(input).map(|_| ())
    }

    fn prepare<'a>(
        &'a self,
        request: InputRequest<'a>,
    ) -> BoxFuture<'a, Result<PreparedInput, InputError>> {
        Box::pin(async move {
            let input = request.input;
            let bytes = decode_data_url(url(input)?)?;
            tokio::fs::write(&request.dest, &bytes)
                .await
                .map_err(|e| InputError::unavailable(input, e))?;
            Ok(PreparedInput {
                host_path: request.dest,
                target: request.target,
                read_write: false,
                in_tree: true,
                bytes_read: bytes.len() as u64,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_decode_base64_and_plain() {
        assert_eq!(
            decode_data_url("data:text/plain;base64,aGk=").unwrap(),
            b"hi"
        );
        assert_eq!(
            decode_data_url("data:,hello%20there").unwrap(),
            b"hello there"
        );
        assert_eq!(
            decode_data_url("data:text/plain;base64,aGVs\nbG8g\r\n  dGhl\ncmU=\n").unwrap(),
            b"hello there",
            "line breaks in base64 are skipped, as upstream's decoder does"
        );
        assert_eq!(decode_data_url("data:;base64,aGk").unwrap(), b"hi");
        assert!(decode_data_url("data:;base64,a*Gk").is_err());
        assert!(decode_data_url("http://x").is_err());
        assert!(decode_data_url("data:application/gzip;base64,AAAA").is_err());
    }
}
