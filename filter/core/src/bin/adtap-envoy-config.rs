//! `adtap-envoy-config`: prints the Envoy configuration entry that loads adtap with a native
//! pre-filter generated from its rules (see `adtap_core::native` and `envoy/README.md`).
//!
//! ```text
//! adtap-envoy-config [--access-log|--http-filter] [--wasm PATH] CONFIG.json
//! ```
//!
//! The configuration is validated first (every error printed, exit 1). The entry is printed as
//! JSON, which is also valid YAML: paste it into an HTTP connection manager's `access_log` list
//! (`--access-log`) or its `http_filters` list ahead of the router (`--http-filter`, the default).
//! Exit 2 on bad usage.

use adtap_core::native::{self, Deployment};
use adtap_core::Config;
use std::io::Read as _;
use std::process::ExitCode;

const USAGE: &str = "\
usage: adtap-envoy-config [--access-log|--http-filter] [--wasm PATH] CONFIG.json

Prints the Envoy configuration entry that loads adtap, with a native filter built from the
configuration's rules that keeps requests no rule can match out of the Wasm VM.

  --http-filter  an `http_filters` entry: Envoy's composite filter, whose matcher creates the Wasm
                 HTTP filter only for requests a rule it captures can match (the default)
  --access-log   an `access_log` entry: the Wasm access logger with an access log filter that
                 passes only requests a rule without capture_body can match
  --wasm PATH    the module's path on the Envoy host (default /etc/envoy/adtap.wasm)
  CONFIG.json    adtap's configuration (`-`: standard input); validated first
  -h, --help     this text

Exit status: 0 printed, 1 invalid or unreadable configuration, 2 bad usage.";

const DEFAULT_WASM: &str = "/etc/envoy/adtap.wasm";

struct Args {
    deployment: Deployment,
    wasm: String,
    config: String,
}

/// `Ok(None)`: `--help` was asked for.
fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut deployment = None;
    let mut wasm = None;
    let mut config = None;
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--access-log" | "--http-filter" => {
                let d = if a == "--access-log" {
                    Deployment::AccessLogger
                } else {
                    Deployment::HttpFilter
                };
                if deployment.is_some_and(|prev| prev != d) {
                    return Err("--access-log and --http-filter exclude each other".into());
                }
                deployment = Some(d);
            }
            "--wasm" => match args.next() {
                Some(p) if !p.is_empty() => wasm = Some(p),
                _ => return Err("--wasm needs a path".into()),
            },
            s if s.starts_with("--wasm=") => {
                let p = s.trim_start_matches("--wasm=");
                if p.is_empty() {
                    return Err("--wasm needs a path".into());
                }
                wasm = Some(p.to_string());
            }
            s if s.starts_with('-') && s != "-" => return Err(format!("unknown option {s}")),
            _ if config.is_some() => return Err("one configuration file only".into()),
            _ => config = Some(a),
        }
    }
    let config = config.ok_or("missing CONFIG.json")?;
    Ok(Some(Args {
        deployment: deployment.unwrap_or(Deployment::HttpFilter),
        wasm: wasm.unwrap_or_else(|| DEFAULT_WASM.to_string()),
        config,
    }))
}

fn read_config(path: &str) -> std::io::Result<String> {
    if path == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        Ok(s)
    } else {
        std::fs::read_to_string(path)
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("adtap-envoy-config: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let text = match read_config(&args.config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("adtap-envoy-config: cannot read {}: {e}", args.config);
            return ExitCode::from(1);
        }
    };
    let cfg = match Config::parse(text.as_bytes()) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!(
                "adtap-envoy-config: {} is not a valid adtap configuration:",
                args.config
            );
            for e in errors {
                eprintln!("  {e}");
            }
            return ExitCode::from(1);
        }
    };
    let plugin_config = text.trim();
    if native::rules_for(&cfg, args.deployment).next().is_none() {
        let what = match args.deployment {
            Deployment::AccessLogger => {
                "the access logger captures no rule (every rule has capture_body): its filter \
                 matches no request, so it never enters the VM"
            }
            Deployment::HttpFilter => {
                "the HTTP filter captures no rule (http_filter_rules is body_only and no rule has \
                 capture_body): its matcher matches no request, so the Wasm filter is never created"
            }
        };
        eprintln!("adtap-envoy-config: warning: {what}");
    }
    let entry = match args.deployment {
        Deployment::AccessLogger => native::access_log_entry(&cfg, plugin_config, &args.wasm),
        Deployment::HttpFilter => native::http_filter_entry(&cfg, plugin_config, &args.wasm),
    };
    match serde_json::to_string_pretty(&entry) {
        Ok(s) => {
            println!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("adtap-envoy-config: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Option<Args>, String> {
        parse_args(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn arguments() {
        let a = parse(&["c.json"]).unwrap().unwrap();
        assert_eq!(
            (a.deployment, a.wasm.as_str(), a.config.as_str()),
            (Deployment::HttpFilter, DEFAULT_WASM, "c.json")
        );
        let a = parse(&["--access-log", "--wasm", "/x.wasm", "-"])
            .unwrap()
            .unwrap();
        assert_eq!(
            (a.deployment, a.wasm.as_str(), a.config.as_str()),
            (Deployment::AccessLogger, "/x.wasm", "-")
        );
        assert_eq!(parse(&["--wasm=/y", "c"]).unwrap().unwrap().wasm, "/y");
        assert!(parse(&["--help"]).unwrap().is_none());
        for bad in [
            &[][..],
            &["--access-log", "--http-filter", "c"],
            &["--wasm"],
            &["--bogus", "c"],
            &["a", "b"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
