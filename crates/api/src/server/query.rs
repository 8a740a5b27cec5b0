//! Query-string parsing that accepts what clients really send (`reverse=True`, empty values).

use super::ApiError;
use std::collections::HashMap;

/// A request's query parameters.
pub struct Params(pub HashMap<String, String>);

impl Params {
    /// A parameter's value, if present and non-empty.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A boolean parameter: `true`/`True`/`1` or `false`/`False`/`0`.
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.text(key) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid {key} {v:?}: expected true or false"
            ))),
        }
    }

    /// A non-negative integer parameter; 0 when absent.
    pub fn number(&self, key: &str) -> Result<u64, ApiError> {
        match self.text(key) {
            None => Ok(0),
            Some(v) => v.parse().map_err(|_| {
                ApiError::bad_request(format!("invalid {key} {v:?}: expected a whole number"))
            }),
        }
    }
}
