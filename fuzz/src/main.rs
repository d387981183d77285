//! `kube-fuzz`: runs the fuzz targets for a time budget and reports.
//!
//! ```text
//! kube-fuzz [--seconds N] [--target T]... [--seed S] [--corpus DIR] [--crashes DIR]
//! kube-fuzz --target T --reproduce FILE
//! kube-fuzz --list
//! ```
//!
//! The budget is split evenly between the chosen targets (all by default).
//! Exits non-zero if any case panicked; each such input is saved under the
//! crash directory (default `target/fuzz-crashes`) for `--reproduce`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use kube_fuzz::runner::{fuzz_target, load_seeds, quiet_panics, run_case};
use kube_fuzz::targets::{self, Target};

const USAGE: &str =
    "usage: kube-fuzz [--seconds N] [--target T]... [--seed S] [--corpus DIR] [--crashes DIR]
       kube-fuzz --target T --reproduce FILE
       kube-fuzz --list";

struct Args {
    seconds: f64,
    targets: Vec<String>,
    seed: Option<u64>,
    corpus: PathBuf,
    crashes: PathBuf,
    reproduce: Option<PathBuf>,
    list: bool,
}

fn parse_args() -> Result<Args> {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut args = Args {
        seconds: 60.0,
        targets: Vec::new(),
        seed: None,
        corpus: here.join("corpus"),
        crashes: here.join("../target/fuzz-crashes"),
        reproduce: None,
        list: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| {
            it.next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--seconds" => {
                args.seconds = value("--seconds")?
                    .parse()
                    .context("--seconds: not a number")?;
                if !(args.seconds.is_finite() && args.seconds >= 0.0) {
                    bail!("--seconds must be a non-negative number");
                }
            }
            "--target" => args
                .targets
                .extend(value("--target")?.split(',').map(str::to_owned)),
            "--seed" => args.seed = Some(value("--seed")?.parse().context("--seed: not a number")?),
            "--corpus" => args.corpus = value("--corpus")?.into(),
            "--crashes" => args.crashes = value("--crashes")?.into(),
            "--reproduce" => args.reproduce = Some(value("--reproduce")?.into()),
            "--list" => args.list = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}`\n{USAGE}"),
        }
    }
    Ok(args)
}

fn chosen(names: &[String]) -> Result<Vec<Target>> {
    if names.is_empty() {
        return Ok(targets::all());
    }
    names
        .iter()
        .map(|n| {
            targets::by_name(n).with_context(|| {
                let all: Vec<_> = targets::all().iter().map(|t| t.name).collect();
                format!("no target `{n}` (targets: {})", all.join(", "))
            })
        })
        .collect()
}

fn main() -> Result<ExitCode> {
    let args = parse_args()?;
    if args.list {
        for t in targets::all() {
            println!("{:<12} {}", t.name, t.about);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let chosen = chosen(&args.targets)?;

    if let Some(file) = &args.reproduce {
        let [target] = chosen.as_slice() else {
            bail!("--reproduce needs exactly one --target");
        };
        let input = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        // The default hook prints the panic with its location.
        let result = std::panic::catch_unwind(|| (target.check)(&input));
        targets::kubeconfig::remove_sandbox();
        return Ok(match result {
            Ok(()) => {
                println!("{}: {} passes", target.name, file.display());
                ExitCode::SUCCESS
            }
            Err(_) => ExitCode::FAILURE,
        });
    }

    let seed = args.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let budget = Duration::from_secs_f64(args.seconds / chosen.len() as f64);
    println!(
        "kube-fuzz: {} target(s), {:.0} s in total, seed {seed} (replay the same cases with --seed {seed})",
        chosen.len(),
        args.seconds
    );
    let mut reports = Vec::new();
    {
        let _quiet = quiet_panics();
        for target in &chosen {
            let seeds = load_seeds(&args.corpus, target.name)
                .with_context(|| format!("reading the corpus of `{}`", target.name))?;
            let report = fuzz_target(target, &seeds, budget, seed, &args.crashes);
            println!(
                "  {:<12} {:>10} cases ({} seeds, {} generated, {} mutated) in {:.1} s, slowest {:.1} ms, {} panic(s)",
                report.name,
                report.cases(),
                report.seeds,
                report.generated,
                report.mutated,
                report.elapsed.as_secs_f64(),
                report.slowest.as_secs_f64() * 1e3,
                report.panics
            );
            reports.push(report);
        }
    }
    targets::kubeconfig::remove_sandbox();

    let total: u64 = reports.iter().map(|r| r.cases()).sum();
    let panics: u64 = reports.iter().map(|r| r.panics).sum();
    println!("kube-fuzz: {total} cases, {panics} panic(s)");
    if panics == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    for r in reports.iter().filter(|r| r.panics > 0) {
        println!(
            "\n{}: {} panicking case(s); first messages:",
            r.name, r.panics
        );
        for m in &r.messages {
            println!("  - {}", m.chars().take(600).collect::<String>());
        }
        for f in &r.saved {
            println!(
                "  saved: {}   (replay: kube-fuzz --target {} --reproduce {})",
                f.display(),
                r.name,
                f.display()
            );
        }
    }
    // A sanity re-run of the first saved input, so a flaky check is noticed.
    if let Some(r) = reports.iter().find(|r| !r.saved.is_empty()) {
        let input = std::fs::read(&r.saved[0])?;
        let target = targets::by_name(r.name).expect("a reported target exists");
        let again = {
            let _quiet = quiet_panics();
            run_case(target.check, &input)
        };
        if again.is_none() {
            println!(
                "note: {} does not panic when replayed alone (state-dependent?)",
                r.saved[0].display()
            );
        }
    }
    Ok(ExitCode::FAILURE)
}
