//! dotenv files: written so that the dotenvy parser reads every value back byte for
//! byte, and read with that parser.

use super::CliError;

/// Whether `key` can be a dotenv key and an environment variable name:
/// `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_variable_name(key: &str) -> bool {
    let mut bytes = key.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `KEY="value"`: always double quotes, with `\`, `"` and `$` escaped (so nothing is
/// substituted) and a newline written as `\n`, so every entry is one line. A carriage
/// return or tab stays as it is: inside quotes the parser keeps it.
pub fn line(key: &str, value: &str) -> String {
    let mut out = String::with_capacity(key.len() + value.len() + 4);
    out.push_str(key);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Parses a dotenv file into (key, value) pairs in file order. `$VAR` substitution
/// happens as dotenvy does it (against earlier keys and the process environment);
/// escape `$` as `\$` for a literal dollar.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, CliError> {
    dotenvy::from_read_iter(text.as_bytes())
        .map(|item| {
            item.map_err(|e| match e {
                dotenvy::Error::LineParse(line, index) => CliError::failed(format!(
                    "not a valid dotenv file: cannot parse line {} at character {index}",
                    line_number(text, &line)
                )),
                other => CliError::failed(format!("not a valid dotenv file: {other}")),
            })
        })
        .collect()
}

/// The 1-based line where `fragment` starts, for an error that must not quote it
/// (it holds a value).
fn line_number(text: &str, fragment: &str) -> usize {
    text.find(fragment)
        .map(|at| text[..at].matches('\n').count() + 1)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(value: &str) -> String {
        let text = format!("{}\nOTHER=\"x\"\n", line("KEY", value));
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.len(), 2, "two entries in {text:?}");
        assert_eq!(parsed[1], ("OTHER".to_string(), "x".to_string()));
        parsed[0].1.clone()
    }

    #[test]
    fn every_awkward_value_reads_back_byte_identical() {
        let values = [
            "",
            "plain",
            "two\nlines",
            "-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
            "windows\r\nline",
            "say \"hi\"",
            "it's",
            "back\\slash",
            "ends with backslash\\",
            "\\n is not a newline",
            "$HOME and ${PATH} and $",
            "# not a comment",
            "a # b",
            "  leading and trailing  ",
            "\ttab\t",
            "'single quoted'",
            "=",
            "ünïcødé ✓",
            "mixed \"$x\" '\\' \n # end",
        ];
        for value in values {
            assert_eq!(round_trip(value), value, "value {value:?}");
        }
    }

    #[test]
    fn substitution_does_not_touch_a_written_dollar() {
        std::env::set_var("COFFER_TEST_SUBSTITUTED", "substituted");
        assert_eq!(
            round_trip("$COFFER_TEST_SUBSTITUTED"),
            "$COFFER_TEST_SUBSTITUTED"
        );
    }

    #[test]
    fn variable_names() {
        for good in ["A", "_A", "DB_URL", "a1"] {
            assert!(is_variable_name(good), "{good}");
        }
        for bad in ["", "1PASSWORD", "MY KEY", "A-B", "A.B", "É"] {
            assert!(!is_variable_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_parse_error_names_the_line_not_its_content() {
        let error = parse("A=1\nB=\"unclosed secret\n").unwrap_err();
        assert!(error.message.contains("line 2"), "{}", error.message);
        assert!(!error.message.contains("secret"), "{}", error.message);
    }
}
