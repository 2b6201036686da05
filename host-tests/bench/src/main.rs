//! `adtap-bench`: every benchmark of adtap, run from one binary, printing the markdown tables
//! of BENCHMARKS.md.
//!
//! ```text
//! cargo run --release -p adtap-bench -- [--short] [--out FILE] [--only LIST] [--wait-idle SECS]
//! ```
//!
//! Sections (each a module):
//! - [`envoy_bench`]: 1 throughput at saturation, 2 latency at a fixed rate, Envoy CPU per
//!   request, 4a Envoy RSS — bare Envoy, the no-op Wasm module (built from `noop-filter/` by
//!   [`tools`]) as HTTP filter and as access logger, Envoy's JSON access log, and adtap shipping
//!   to the in-process [`sink`] in both deployments (HTTP filter, Wasm access logger), with the
//!   default and all response fields, and on traffic no rule matches behind the native skip
//!   (the [`envoy::Variant`]s); with `--out FILE` it also draws [`chart`] beside FILE;
//! - [`native`]: 3a the core's per-event cost natively (the criterion bench of `adtap-core`);
//! - [`vm`]: 3b per-event cost and bytes on the wire in the wasmtime host on the release
//!   `.wasm`, 4b the VM's linear memory at idle, steady load and overload;
//! - [`e2e`]: 5 delivery rate through the local stack (broker, REST proxy, Envoy).
//!
//! `--short` is the CI smoke mode (one round, 2-second runs, [`envoy::Variant::SHORT`]: every
//! bootstrap shape started once); the full mode runs 5 interleaved rounds of 8 seconds of
//! [`envoy::Variant::DEFAULT`]. The machine, the tools and the load average go in the report's head.

mod chart;
mod config;
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

use adtap_core::config::{Dialect, ValueFormat};
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
    /// `--variants`; `None`: [`envoy::Variant::DEFAULT`] (`SHORT` with `--short`).
    variants: Option<Vec<envoy::Variant>>,
    rounds: Option<usize>,
    secs: Option<u64>,
    /// An RFC 7396 merge patch (JSON file) over the bench's adtap configuration in the Envoy runs
    /// ([`config`]; e.g. `lean-patch.json`, fewer response fields).
    adtap_patch: Option<PathBuf>,
    /// Another adtap module run as the `baseline` variant, for a before/after in one run.
    baseline_wasm: Option<PathBuf>,
}

/// The usage text, with the variant names from [`envoy::Variant`].
fn usage() -> String {
    let names = |vs: &[envoy::Variant]| vs.iter().map(|v| v.name()).collect::<Vec<_>>().join(",");
    format!(
        "usage: adtap-bench [--short] [--out FILE] [--only envoy,native,vm,e2e] \
         [--rate REQ_PER_S] [--wait-idle SECS] [--variants V,V,...] [--rounds N] [--secs S] \
         [--adtap-patch FILE] [--baseline-wasm FILE]\n\
         variants: {}\n\
         default: {}\n\
         --short: {}\n\
         --baseline-wasm adds baseline after adtap and baseline-log after adtap-log\n\
         with --out DIR/NAME.md the chart goes to DIR/NAME-throughput.svg \
         (a trailing -results dropped: bench-results.md -> bench-throughput.svg)",
        names(&envoy::Variant::ALL),
        names(&envoy::Variant::DEFAULT),
        names(&envoy::Variant::SHORT)
    )
}

/// The options without arguments: every section, 5000 req/s in the fixed-rate runs.
impl Default for Opts {
    fn default() -> Opts {
        Opts {
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
            variants: None,
            rounds: None,
            secs: None,
            adtap_patch: None,
            baseline_wasm: None,
        }
    }
}

fn parse_args() -> Result<Opts> {
    let mut opts = Opts::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--short" => opts.short = true,
            "--out" => opts.out = Some(args.next().with_context(usage)?.into()),
            "--rate" => opts.rate = args.next().with_context(usage)?.parse()?,
            "--adtap-patch" => opts.adtap_patch = Some(args.next().with_context(usage)?.into()),
            "--baseline-wasm" => opts.baseline_wasm = Some(args.next().with_context(usage)?.into()),
            "--rounds" => opts.rounds = Some(args.next().with_context(usage)?.parse()?),
            "--secs" => opts.secs = Some(args.next().with_context(usage)?.parse()?),
            "--variants" => {
                let list = args.next().with_context(usage)?;
                opts.variants = Some(
                    list.split(',')
                        .map(|v| {
                            envoy::Variant::parse(v.trim()).with_context(|| {
                                format!("unknown variant `{}`\n{}", v.trim(), usage())
                            })
                        })
                        .collect::<Result<_>>()?,
                );
            }
            "--wait-idle" => opts.wait_idle = args.next().with_context(usage)?.parse()?,
            "--only" => {
                let list = args.next().with_context(usage)?;
                let has = |s: &str| list.split(',').any(|x| x.trim() == s);
                opts.only = Only {
                    envoy: has("envoy"),
                    native: has("native"),
                    vm: has("vm"),
                    e2e: has("e2e"),
                };
            }
            "-h" | "--help" => {
                println!("{}", usage());
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n{}", usage()),
        }
    }
    Ok(opts)
}

/// The variants to run: `--variants`, else the default (or short) set, with the baselines
/// inserted right after the variant they are compared with when `--baseline-wasm` is given.
fn variants(opts: &Opts) -> Result<Vec<envoy::Variant>> {
    use envoy::Variant;
    let mut vs = match &opts.variants {
        Some(v) => v.clone(),
        None if opts.short => Variant::SHORT.to_vec(),
        None => Variant::DEFAULT.to_vec(),
    };
    if opts.baseline_wasm.is_some() {
        // Right after adtap (the logger's after adtap's logger), so that the two are measured
        // back to back in every round.
        if !vs.contains(&Variant::Baseline) {
            let at = vs
                .iter()
                .position(|v| *v == Variant::Adtap)
                .map_or(vs.len(), |i| i + 1);
            vs.insert(at, Variant::Baseline);
        }
        if !vs.contains(&Variant::BaselineLog) {
            if let Some(i) = vs.iter().position(|v| *v == Variant::AdtapLog) {
                vs.insert(i + 1, Variant::BaselineLog);
            }
        }
    }
    let needs_base = vs
        .iter()
        .any(|v| v.module() == Some(envoy::Module::Baseline));
    if needs_base && opts.baseline_wasm.is_none() {
        bail!(
            "the `baseline` and `baseline-log` variants need --baseline-wasm FILE\n{}",
            usage()
        );
    }
    let mut seen = Vec::new();
    for v in &vs {
        if seen.contains(v) {
            bail!("variant `{}` given twice", v.name());
        }
        seen.push(*v);
    }
    Ok(vs)
}

/// The chart beside the markdown: `DIR/NAME.md` → `DIR/NAME-throughput.svg`, with a trailing
/// `-results` dropped from NAME (`bench-results.md` → `bench-throughput.svg`).
fn chart_path(out: &std::path::Path) -> PathBuf {
    let stem = out.file_stem().and_then(|s| s.to_str()).unwrap_or("bench");
    let stem = stem.strip_suffix("-results").unwrap_or(stem);
    out.with_file_name(format!("{stem}-throughput.svg"))
}

fn main() -> Result<()> {
    let opts = parse_args()?;
    let variants = variants(&opts)?;
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
            sections.push(Section::new(
                format!(
                    "## {name}\n\n**failed**: `{}`\n",
                    format!("{e:#}").replace('\n', " ")
                ),
                Vec::new(),
            ));
        }
    };
    if opts.only.envoy {
        eprintln!("==> sections 1, 2, 4a: Envoy throughput, latency, memory");
        let r = tools::build_noop_filter(&tools).and_then(|noop| {
            let settings = envoy_bench::Settings {
                rounds,
                secs,
                latency_secs,
                rate: opts.rate,
                conns: 16,
                cpus: tools::pin_cpus(),
                variants: variants.clone(),
                chart: opts.out.as_deref().map(chart_path),
            };
            let inputs = envoy::Inputs {
                noop_wasm: noop,
                adtap_wasm: tools.adtap_wasm.clone(),
                baseline_wasm: opts.baseline_wasm.clone(),
                adtap_config: {
                    let (d, f) = (Dialect::ConfluentV2, ValueFormat::Json);
                    match &opts.adtap_patch {
                        Some(path) => config::with_patch_file(d, f, path)?,
                        None => config::adtap_config(d, f),
                    }
                    .to_string()
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

#[cfg(test)]
mod tests {
    use super::*;
    use envoy::Variant;

    fn opts(short: bool, variants: Option<Vec<Variant>>, baseline: bool) -> Opts {
        Opts {
            short,
            variants,
            baseline_wasm: baseline.then(|| PathBuf::from("/x/old.wasm")),
            ..Opts::default()
        }
    }

    #[test]
    fn chart_beside_the_markdown() {
        assert_eq!(
            chart_path(std::path::Path::new("dist/bench-results.md")),
            PathBuf::from("dist/bench-throughput.svg")
        );
        assert_eq!(
            chart_path(std::path::Path::new("dist/bench-smoke.md")),
            PathBuf::from("dist/bench-smoke-throughput.svg")
        );
    }

    #[test]
    fn variant_sets_and_baselines() {
        assert_eq!(
            variants(&opts(false, None, false)).unwrap(),
            Variant::DEFAULT.to_vec()
        );
        assert_eq!(
            variants(&opts(true, None, false)).unwrap(),
            Variant::SHORT.to_vec()
        );
        // --baseline-wasm puts each baseline right after the variant it is compared with.
        let v = variants(&opts(
            false,
            Some(vec![Variant::Noop, Variant::Adtap, Variant::AdtapLog]),
            true,
        ))
        .unwrap();
        assert_eq!(
            v,
            vec![
                Variant::Noop,
                Variant::Adtap,
                Variant::Baseline,
                Variant::AdtapLog,
                Variant::BaselineLog
            ]
        );
        assert!(variants(&opts(false, Some(vec![Variant::BaselineLog]), false)).is_err());
        assert!(variants(&opts(
            false,
            Some(vec![Variant::Noop, Variant::Noop]),
            false
        ))
        .is_err());
    }
}
