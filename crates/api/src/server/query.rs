//! Query-string parsing that accepts what clients really send (`reverse=True`, empty values,
//! repeated keys), and the list parameters several routes share: paging and job versions.

use super::ApiError;
use bacalhau_orchestrator::JobVersions;

/// A request's query parameters, in the order sent (a key may repeat).
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// A parameter's first value, if present and non-empty (the first, as upstream's binder).
    pub fn text(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every non-empty value of a repeated parameter, joined with commas (how upstream joins
    /// repeated `labels`); `None` when there is none.
    pub fn joined(&self, key: &str) -> Option<String> {
        let values: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    }

    /// A boolean parameter: `true`/`True`/`1` or `false`/`False`/`0`; `None` when absent.
    pub fn optional_flag(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.text(key) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") || v == "1" => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") || v == "0" => Ok(Some(false)),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid {key} {v:?}: expected true or false"
            ))),
        }
    }

    /// A boolean parameter; false when absent.
    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        Ok(self.optional_flag(key)?.unwrap_or(false))
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

    /// Which versions of a job a list covers, by upstream's `job_version` (0: none given) and
    /// `all_job_versions`: one version, every version, or (`all_job_versions=false`) the
    /// latest. With neither, every version, as this server always answered (upstream: the
    /// latest).
    pub fn job_versions(&self) -> Result<JobVersions, ApiError> {
        let version = self.number("job_version")?;
        let all = self.optional_flag("all_job_versions")?;
        Ok(match (version, all) {
            (0, Some(false)) => JobVersions::Latest,
            (0, _) => JobVersions::All,
            (version, _) => JobVersions::Only(version),
        })
    }

    /// `limit` and `next_token`, for a list served whole from memory.
    pub fn paging(&self) -> Result<Paging, ApiError> {
        let limit = usize::try_from(self.number("limit")?).unwrap_or(usize::MAX);
        let offset = match self.text("next_token") {
            None => 0,
            Some(token) => token.parse::<usize>().map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid next_token {token:?}: expected the NextToken of a previous page"
                ))
            })?,
        };
        Ok(Paging { limit, offset })
    }
}

/// A page of a list: at most `limit` items (0: no limit) from `offset` on.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    limit: usize,
    offset: usize,
}

impl Paging {
    /// The page of `items`, and the token of the next one (an offset into the list; empty on
    /// the last page).
    pub fn apply<T>(self, items: Vec<T>) -> (Vec<T>, String) {
        let total = items.len();
        let take = if self.limit == 0 {
            usize::MAX
        } else {
            self.limit
        };
        let page: Vec<T> = items.into_iter().skip(self.offset).take(take).collect();
        let end = self.offset.saturating_add(page.len());
        let next = if self.limit > 0 && end < total {
            end.to_string()
        } else {
            String::new()
        };
        (page, next)
    }
}

/// Reads `order_by` against a route's allowed values: the key the caller asked for, or
/// `default` when absent; any other value is a 400 naming the allowed ones.
pub fn order_by<'a>(
    params: &'a Params,
    allowed: &[&str],
    default: &'a str,
) -> Result<&'a str, ApiError> {
    match params.text("order_by") {
        None => Ok(default),
        Some(key) if allowed.contains(&key) => Ok(key),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid order_by {other:?}: use one of {}",
            allowed.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn pages_are_offsets_into_the_list() {
        let items: Vec<u32> = (0..5).collect();
        let page = |pairs: &[(&str, &str)]| params(pairs).paging().unwrap().apply(items.clone());
        assert_eq!(page(&[("limit", "2")]), (vec![0, 1], "2".to_string()));
        assert_eq!(
            page(&[("limit", "2"), ("next_token", "2")]),
            (vec![2, 3], "4".to_string())
        );
        assert_eq!(
            page(&[("limit", "2"), ("next_token", "4")]),
            (vec![4], String::new())
        );
        assert_eq!(page(&[("next_token", "3")]), (vec![3, 4], String::new()));
        assert_eq!(page(&[]), (items.clone(), String::new()));
        assert!(page(&[("next_token", "99")]).0.is_empty());
        assert!(params(&[("next_token", "x")]).paging().is_err());
        assert!(params(&[("limit", "-1")]).paging().is_err());
    }

    #[test]
    fn job_versions_follow_upstream_with_our_default() {
        assert_eq!(params(&[]).job_versions().unwrap(), JobVersions::All);
        assert_eq!(
            params(&[("all_job_versions", "false")])
                .job_versions()
                .unwrap(),
            JobVersions::Latest
        );
        assert_eq!(
            params(&[("all_job_versions", "True")])
                .job_versions()
                .unwrap(),
            JobVersions::All
        );
        // A version takes precedence, as upstream's store has it.
        assert_eq!(
            params(&[("job_version", "3"), ("all_job_versions", "true")])
                .job_versions()
                .unwrap(),
            JobVersions::Only(3)
        );
        assert!(params(&[("job_version", "x")]).job_versions().is_err());
        assert!(
            params(&[("all_job_versions", "yes")])
                .job_versions()
                .is_err()
        );
    }

    #[test]
    fn repeated_keys_join_and_scalars_take_the_first() {
        let p = params(&[("labels", "a=b"), ("labels", ""), ("labels", "c")]);
        assert_eq!(p.joined("labels").as_deref(), Some("a=b,c"));
        assert_eq!(p.text("labels"), Some("a=b"));
        assert_eq!(params(&[]).joined("labels"), None);
    }
}
