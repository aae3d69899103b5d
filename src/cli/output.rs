//! Output shared by the commands: tables for people, JSON for scripts, and the mask
//! that hides values. Nothing decorative goes to stdout when it is not a terminal.

use std::io::{IsTerminal, Write};

use comfy_table::{presets, ContentArrangement, Table};
use serde_json::Value;

/// What a hidden value is shown as.
pub const MASK: &str = "********";

/// Whether stdout is a terminal (people) rather than a pipe or file (scripts).
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Prints a table: boxed on a terminal, plain aligned columns otherwise.
pub fn print_table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut table = Table::new();
    if stdout_is_terminal() {
        table
            .load_preset(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic);
    } else {
        table.load_preset(presets::NOTHING);
    }
    table.set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    if !stdout_is_terminal() {
        // Columns flush left, two spaces apart: easy to cut and awk.
        for column in table.column_iter_mut() {
            column.set_padding((0, 2));
        }
    }
    let text: String = table
        .to_string()
        .lines()
        .map(|line| format!("{}\n", line.trim_end()))
        .collect();
    write_stdout(text.as_bytes());
}

/// Writes to stdout; a reader that went away (`coffer export | head -1`) is not an
/// error worth more than stopping.
pub fn write_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: writing to stdout: {e}");
            std::process::exit(1);
        }
    }
}

/// Prints pretty JSON followed by a newline.
pub fn print_json(value: &Value) {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialise") + "\n";
    write_stdout(text.as_bytes());
}

/// One line for a table cell: a multi-line value is shown with `\n`, so a row is a line.
pub fn one_line(value: &str) -> String {
    value.replace('\r', "\\r").replace('\n', "\\n")
}
