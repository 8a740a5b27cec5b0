//! `inline` inputs: RFC 2397 `data:` URLs carried in the spec, base64 or percent-encoded.

use bacalhau_compute::executor::BoxFuture;
use bacalhau_compute::{InputError, InputRequest, InputStorage, PreparedInput};
use bacalhau_models::InputSource;
use base64::Engine as _;

/// Largest inline input accepted, decoded.
pub const MAX_INLINE_BYTES: usize = 64 * 1024 * 1024;

/// Standard base64, padded or not.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Writes `data:` URLs to files.
pub struct InlineStorage;

/// Decodes a `data:` URL.
pub fn decode_data_url(url: &str) -> Result<Vec<u8>, InputError> {
    let invalid = |why: &str| InputError::Invalid(format!("invalid inline data URL: {why}"));
    let rest = url
        .strip_prefix("data:")
        .ok_or_else(|| invalid("it must start with data:"))?;
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| invalid("no comma before the data"))?;
    if meta.contains("gzip") {
        return Err(invalid(
            "gzip archives are not supported yet; send the file itself",
        ));
    }
    let bytes = if meta.ends_with(";base64") {
        // Upstream's specs split long base64 over lines (its decoder skips the line breaks)
        // and some writers drop the padding: accept both.
        let compact: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        BASE64
            .decode(compact)
            .map_err(|e| invalid(&format!("bad base64: {e}")))?
    } else {
        percent_encoding::percent_decode_str(data).collect()
    };
    if bytes.len() > MAX_INLINE_BYTES {
        return Err(invalid(&format!("larger than {MAX_INLINE_BYTES} bytes")));
    }
    Ok(bytes)
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
