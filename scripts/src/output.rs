//! Human reports or JSON, and confirmation for destructive commands.

use anyhow::{bail, Result};
use serde_json::Value;
use std::io::{BufRead, IsTerminal, Write};

pub fn print(json: bool, value: &Value, human: impl FnOnce() -> String) {
    if json {
        println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
    } else {
        println!("{}", human());
    }
}

/// Asks on a terminal; refuses without one unless `--yes` was given.
pub fn confirm(yes: bool, what: &str) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("{what}: pass --yes to confirm (no terminal to ask on)");
    }
    eprint!("{what}. Continue? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        Ok(())
    } else {
        bail!("cancelled")
    }
}

/// `key: value` lines for a JSON object, nested objects indented.
pub fn report(value: &Value, indent: usize) -> String {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::Object(_) => format!("{pad}{k}:\n{}", report(v, indent + 2)),
                Value::Array(items) if items.iter().any(Value::is_object) => {
                    let rows: Vec<String> = items.iter().map(|i| report(i, indent + 4)).collect();
                    format!("{pad}{k}:\n{}", rows.join(&format!("\n{pad}  --\n")))
                }
                other => format!("{pad}{k}: {}", scalar(other)),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        other => format!("{pad}{}", scalar(other)),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}
