//! `adtap-bench`: every benchmark of adtap, run from one binary, printing the markdown tables
//! of BENCHMARKS.md.
//!
//! ```text
//! cargo run --release -p adtap-bench -- [--short] [--out FILE] [--only LIST] [--wait-idle SECS]
//! ```
//!
//! Sections (each a module):
//! - [`envoy_bench`]: 1 throughput at saturation, 2 latency at a fixed rate, 4a Envoy RSS —
//!   bare Envoy, the no-op Wasm filter (built from `noop-filter/` by [`tools`]), Envoy's JSON
//!   access log, and adtap shipping to the in-process [`sink`];
//! - [`native`]: 3a the core's per-event cost natively (the criterion bench of `adtap-core`);
//! - [`vm`]: 3b per-event cost and bytes on the wire in the wasmtime host on the release
//!   `.wasm`, 4b the VM's linear memory at idle, steady load and overload;
//! - [`e2e`]: 5 delivery rate through the local stack (broker, REST proxy, Envoy).
//!
//! `--short` is the CI smoke mode (one round, 2-second runs); the full mode runs 5 interleaved
//! rounds of 8 seconds. The machine, the tools and the load average go in the report's head.

mod e2e;
mod envoy;
mod envoy_bench;
mod http;
mod load;
mod native;
mod report;
mod sink;
mod stats;
mod tools;
mod vm;

use anyhow::{bail, Context, Result};
use report::{targets_table, Section};
use std::path::PathBuf;

/// Which sections to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Only {
    envoy: bool,
    native: bool,
    vm: bool,
    e2e: bool,
}

#[derive(Debug, Clone)]
struct Opts {
    short: bool,
    out: Option<PathBuf>,
    only: Only,
    wait_idle: u64,
    rate: f64,
    variants: Vec<envoy::Variant>,
    rounds: Option<usize>,
    secs: Option<u64>,
    /// A JSON file replacing adtap's configuration in the Envoy runs (e.g. fewer response fields).
    adtap_config: Option<PathBuf>,
    /// Another adtap module run as the `baseline` variant, for a before/after in one run.
    baseline_wasm: Option<PathBuf>,
}

const USAGE: &str = "usage: adtap-bench [--short] [--out FILE] [--only envoy,native,vm,e2e] \
                     [--rate REQ_PER_S] [--wait-idle SECS] \
                     [--variants bare,noop,accesslog,adtap] [--rounds N] [--secs S] \
                     [--adtap-config FILE] [--baseline-wasm FILE]";

fn parse_args() -> Result<Opts> {
    let mut opts = Opts {
        short: false,
        out: None,
        only: Only {
            envoy: true,
            native: true,
            vm: true,
            e2e: true,
        },
        wait_idle: 0,
        rate: 5_000.0,
        variants: envoy::Variant::DEFAULT.to_vec(),
        rounds: None,
        secs: None,
        adtap_config: None,
        baseline_wasm: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--short" => opts.short = true,
            "--out" => opts.out = Some(args.next().context(USAGE)?.into()),
            "--rate" => opts.rate = args.next().context(USAGE)?.parse()?,
            "--adtap-config" => {
                opts.adtap_config = Some(PathBuf::from(args.next().context(USAGE)?));
            }
            "--baseline-wasm" => {
                opts.baseline_wasm = Some(PathBuf::from(args.next().context(USAGE)?));
            }
            "--rounds" => opts.rounds = Some(args.next().context(USAGE)?.parse()?),
            "--secs" => opts.secs = Some(args.next().context(USAGE)?.parse()?),
            "--variants" => {
                let list = args.next().context(USAGE)?;
                opts.variants = list
                    .split(',')
                    .map(|v| envoy::Variant::parse(v.trim()).context(USAGE))
                    .collect::<Result<_>>()?;
            }
            "--wait-idle" => opts.wait_idle = args.next().context(USAGE)?.parse()?,
            "--only" => {
                let list = args.next().context(USAGE)?;
                let has = |s: &str| list.split(',').any(|x| x.trim() == s);
                opts.only = Only {
                    envoy: has("envoy"),
                    native: has("native"),
                    vm: has("vm"),
                    e2e: has("e2e"),
                };
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    if opts.baseline_wasm.is_some() && !opts.variants.contains(&envoy::Variant::Baseline) {
        // Right after adtap, so the two are measured back to back in every round.
        let at = opts
            .variants
            .iter()
            .position(|v| *v == envoy::Variant::Adtap)
            .map_or(opts.variants.len(), |i| i + 1);
        opts.variants.insert(at, envoy::Variant::Baseline);
    }
    if opts.variants.contains(&envoy::Variant::Baseline) && opts.baseline_wasm.is_none() {
        bail!("the `baseline` variant needs --baseline-wasm FILE\n{USAGE}");
    }
    Ok(opts)
}

fn main() -> Result<()> {
    let opts = parse_args()?;
    let t0 = std::time::Instant::now();
    let tools = tools::Tools::locate()?;
    tools::wait_idle(opts.wait_idle);
    let machine_before = tools::machine();
    let (rounds, secs) = if opts.short { (1, 2) } else { (5, 8) };
    let rounds = opts.rounds.unwrap_or(rounds);
    let secs = opts.secs.unwrap_or(secs);
    let latency_secs = secs as f64;

    // A section that fails is reported in the output (and fails the command at the end), so
    // that one broken part does not hide the figures of the others.
    let mut sections: Vec<Section> = Vec::new();
    let mut failed = Vec::new();
    let mut record = |name: &str, r: Result<Section>| match r {
        Ok(s) => sections.push(s),
        Err(e) => {
            eprintln!("section {name} FAILED: {e:#}");
            failed.push(name.to_string());
            sections.push(Section {
                markdown: format!(
                    "## {name}\n\n**failed**: `{}`\n",
                    format!("{e:#}").replace('\n', " ")
                ),
                targets: Vec::new(),
            });
        }
    };
    if opts.only.envoy {
        eprintln!("==> sections 1, 2, 4a: Envoy throughput, latency, memory");
        let r = tools::build_noop_filter(&tools).and_then(|noop| {
            let settings = envoy_bench::Settings {
                envoy: tools.envoy.clone(),
                rounds,
                secs,
                latency_secs,
                rate: opts.rate,
                conns: 16,
                cpus: tools::pin_cpus(),
                variants: opts.variants.clone(),
            };
            let inputs = envoy::Inputs {
                noop_wasm: noop,
                adtap_wasm: tools.adtap_wasm.clone(),
                baseline_wasm: opts.baseline_wasm.clone(),
                adtap_config: match &opts.adtap_config {
                    Some(path) => std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?,
                    None => envoy::adtap_config("json"),
                },
                rest_port: 0,
            };
            envoy_bench::run(&settings, &inputs)
        });
        record("1, 2, 4a. Envoy throughput, latency, memory", r);
    }
    if opts.only.native {
        eprintln!("==> section 3a: the core natively (criterion)");
        record("3a. The core natively", native::run(&tools, opts.short));
    }
    if opts.only.vm {
        eprintln!("==> sections 3b, 4b: in the wasmtime host");
        let r =
            tools::build_noop_filter(&tools).and_then(|noop| vm::run(&tools, &noop, opts.short));
        record("3b, 4b. In the wasmtime host", r);
    }
    if opts.only.e2e {
        eprintln!("==> section 5: end-to-end through the local stack");
        record("5. End-to-end delivery rate", e2e::run(&tools, opts.short));
    }

    let mut md = String::new();
    md.push_str(&format!(
        "<!-- generated by `adtap-bench{}` in {:.0} s -->\n\n",
        if opts.short { " --short" } else { "" },
        t0.elapsed().as_secs_f64()
    ));
    md.push_str("## Machine and run\n\n");
    md.push_str(&machine_before);
    md.push_str(&format!(
        "- load average at the end: {}\n- {}\n\n",
        tools::loadavg(),
        tools.versions()
    ));
    let targets: Vec<_> = sections.iter().flat_map(|s| s.targets.clone()).collect();
    md.push_str("## Targets\n\n");
    md.push_str(&targets_table(&targets));
    for s in &sections {
        md.push('\n');
        md.push_str(&s.markdown);
    }
    println!("{md}");
    if let Some(out) = &opts.out {
        std::fs::write(out, &md).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("wrote {}", out.display());
    }
    if !failed.is_empty() {
        bail!("failed sections: {}", failed.join("; "));
    }
    Ok(())
}
