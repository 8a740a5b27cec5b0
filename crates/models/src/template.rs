//! Job specs as Go text/templates, as upstream's `job run` renders them: `{{.name}}` is replaced
//! by the variable `name` (from `-V name=value` or the environment with `-E`), and a variable
//! the spec uses but nobody set is an error (Go's `missingkey=error`), never an empty string.

use std::collections::BTreeMap;

/// Why a spec template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error(
        "the job spec uses template variable {0:?}, which is not set (set it with -V {0}=VALUE or -E, or pass --no-template)"
    )]
    Missing(String),
    #[error("the job spec is not a valid template: {0}")]
    Invalid(String),
}

/// Renders `text` with `vars`. Text without `{{` is returned unchanged.
pub fn render_spec_template(
    text: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, TemplateError> {
    if !text.contains("{{") {
        return Ok(text.to_string());
    }
    if let Some(missing) = referenced_fields(text)
        .into_iter()
        .find(|field| !vars.contains_key(field))
    {
        return Err(TemplateError::Missing(missing));
    }
    let context: std::collections::HashMap<String, gtmpl::Value> = vars
        .iter()
        .map(|(name, value)| (name.clone(), gtmpl::Value::String(value.clone())))
        .collect();
    let mut template = gtmpl::Template::default();
    template
        .parse(text)
        .map_err(|e| TemplateError::Invalid(e.to_string()))?;
    template
        .render(&gtmpl::Context::from(gtmpl::Value::Map(context)))
        .map_err(|e| TemplateError::Invalid(e.to_string()))
}

/// The top-level fields (`.name`) the actions of `text` read, in order of first use. gtmpl
/// renders a missing key as `<no value>`; this is how `missingkey=error` is kept. Fields after
/// another name (`$x.name`, `.a.name`) and inside quoted strings are not top-level.
fn referenced_fields(text: &str) -> Vec<String> {
    let mut fields: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let action = &after[..end];
        let mut chars = action.char_indices().peekable();
        let mut previous = ' ';
        while let Some((i, c)) = chars.next() {
            match c {
                '"' | '`' => {
                    // Skip the string literal, honouring backslash escapes in "...".
                    let mut escaped = false;
                    for (_, inner) in chars.by_ref() {
                        if c == '"' && inner == '\\' && !escaped {
                            escaped = true;
                            continue;
                        }
                        if inner == c && !escaped {
                            break;
                        }
                        escaped = false;
                    }
                    previous = c;
                    continue;
                }
                '.' if !(previous.is_alphanumeric() || "_)]$.".contains(previous)) => {
                    let name: String = action[i + 1..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() && !fields.contains(&name) {
                        fields.push(name);
                    }
                }
                _ => {}
            }
            previous = c;
        }
        rest = &after[end + 2..];
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn variables_are_replaced() {
        let text = "Name: {{.name}}\nImage: {{ .image }}:{{.tag}}\n";
        let rendered = render_spec_template(
            text,
            &vars(&[("name", "x"), ("image", "busybox"), ("tag", "1.37.0")]),
        )
        .unwrap();
        assert_eq!(rendered, "Name: x\nImage: busybox:1.37.0\n");
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = render_spec_template("a: {{.here}} {{.gone}}", &vars(&[("here", "1")]));
        assert_eq!(err, Err(TemplateError::Missing("gone".into())));
        // Also when only a condition reads it, as Go's missingkey=error.
        let err = render_spec_template("{{if .flag}}x{{end}}", &vars(&[]));
        assert_eq!(err, Err(TemplateError::Missing("flag".into())));
    }

    #[test]
    fn specs_without_actions_pass_through_and_bad_templates_fail() {
        let text = "Name: plain # no braces\n";
        assert_eq!(render_spec_template(text, &vars(&[])).unwrap(), text);
        assert!(matches!(
            render_spec_template("{{if}}", &vars(&[])),
            Err(TemplateError::Invalid(_))
        ));
    }

    #[test]
    fn fields_in_strings_or_chains_are_not_variables() {
        assert_eq!(
            referenced_fields(r#"{{ printf "%s.x" .a }} {{ $v.b }} {{ .c.d }} {{`.e`}}"#),
            vec!["a", "c"]
        );
    }
}
