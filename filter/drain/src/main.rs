//! `adtap-drain`: drain Envoy's listeners, wait until adtap holds nothing, optionally stop Envoy.
//! See the library docs (`src/lib.rs`) for the procedure and `--help` for the options.

use adtap_drain::{drain_and_wait, Admin, Holding, Wait};
use std::process::{Command, ExitCode};
use std::time::Duration;

const USAGE: &str = "\
usage: adtap-drain [OPTIONS] [--exec PROGRAM [ARGS...]]

Drains Envoy's listeners (POST /drain_listeners?graceful&skip_exit), waits until adtap's VMs hold
nothing (wasmcustom.adtap_buffered and wasmcustom.adtap_in_flight at 0), and optionally stops Envoy.

  --admin HOST:PORT   Envoy's admin interface (default 127.0.0.1:9901)
  --timeout SECS      stop waiting after this long (default 30; fractions allowed)
  --min-wait SECS     never call the VMs idle sooner than this after the drain (default 0)
  --poll-ms MS        between two reads of /stats (default 100)
  --dead-after SECS   a VM whose adtap_vm.<id>.ticks has not advanced for this long is dead
                      (trapped): reported, not waited for (default 2)
  --inbound-only      drain only inbound listeners (&inboundonly; sidecars)
  --no-drain          do not drain, only wait
  --then-kill PID     then send SIGTERM to PID (also after the timeout)
  --then-quit         then POST /quitquitquit (also after the timeout)
  --exec PROGRAM ...  run PROGRAM (Envoy) as a child; on SIGTERM or SIGINT drain, wait, then
                      SIGTERM the child and exit with its status

Exit status: 0 idle; 1 events still held at the timeout (reported); 2 bad usage;
3 the admin interface failed or adtap's gauges are not visible. With --exec: the child's status.
";

/// Parsed command line.
#[derive(Debug)]
struct Opts {
    admin: String,
    wait: Wait,
    inbound_only: bool,
    drain: bool,
    then_kill: Option<i32>,
    then_quit: bool,
    exec: Vec<String>,
}

fn parse_secs(flag: &str, v: Option<String>) -> Result<Duration, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
    let secs: f64 = v
        .parse()
        .map_err(|_| format!("{flag}: {v:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{flag}: {v:?} is out of range"))
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Opts, String> {
    let mut o = Opts {
        admin: "127.0.0.1:9901".into(),
        wait: Wait {
            timeout: Duration::from_secs(30),
            every: Duration::from_millis(100),
            at_least: Duration::ZERO,
            dead_after: Duration::from_secs(2),
        },
        inbound_only: false,
        drain: true,
        then_kill: None,
        then_quit: false,
        exec: Vec::new(),
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--admin" => o.admin = args.next().ok_or("--admin needs HOST:PORT")?,
            "--timeout" => o.wait.timeout = parse_secs("--timeout", args.next())?,
            "--min-wait" => o.wait.at_least = parse_secs("--min-wait", args.next())?,
            "--dead-after" => o.wait.dead_after = parse_secs("--dead-after", args.next())?,
            "--poll-ms" => {
                let v = args.next().ok_or("--poll-ms needs a value")?;
                let ms: u64 = v.parse().map_err(|_| format!("--poll-ms: {v:?}"))?;
                o.wait.every = Duration::from_millis(ms.max(1));
            }
            "--inbound-only" => o.inbound_only = true,
            "--no-drain" => o.drain = false,
            "--then-kill" => {
                let v = args.next().ok_or("--then-kill needs a pid")?;
                o.then_kill = Some(v.parse().map_err(|_| format!("--then-kill: {v:?}"))?);
            }
            "--then-quit" => o.then_quit = true,
            "--exec" => {
                o.exec = args.by_ref().collect();
                if o.exec.is_empty() {
                    return Err("--exec needs a program".into());
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !o.exec.is_empty() && (o.then_kill.is_some() || o.then_quit) {
        return Err("--exec stops its child itself: no --then-kill/--then-quit".into());
    }
    Ok(o)
}

/// Steps 1 and 2, reported on stdout (the outcome) and stderr (failures); the exit code.
fn drain(o: &Opts) -> u8 {
    let admin = match Admin::new(&o.admin, Duration::from_secs(5)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("adtap-drain: {e}");
            return 3;
        }
    };
    match drain_and_wait(&admin, o.drain, o.inbound_only, o.wait) {
        Ok(out) => {
            let ms = out.elapsed.as_millis();
            for (id, (buffered, in_flight)) in &out.dead {
                println!(
                    "adtap-drain: VM {id} is dead (its ticks stopped): {buffered} buffered and \
                     {in_flight} in flight were lost with it, not waited for"
                );
            }
            match out.holding {
                Holding::Idle => {
                    println!("adtap-drain: idle after {ms} ms (admin {})", admin.addr());
                    0
                }
                Holding::Events { .. } => {
                    println!(
                        "adtap-drain: not idle after {ms} ms (timeout): {}; stats: {:?}",
                        out.holding, out.stats
                    );
                    1
                }
                Holding::NotVisible => {
                    eprintln!("adtap-drain: {}", out.holding);
                    3
                }
            }
        }
        Err(e) => {
            eprintln!("adtap-drain: {e}");
            3
        }
    }
}

fn sigterm(pid: i32) -> Result<(), String> {
    // SAFETY: kill(2) with a caller-chosen pid; no memory is shared.
    if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
        Ok(())
    } else {
        Err(format!(
            "SIGTERM to {pid}: {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// Drain, then the optional stop (sent even after a timeout: the timeout is the bound the
/// operator chose).
fn run_once(o: &Opts) -> u8 {
    let code = drain(o);
    if let Some(pid) = o.then_kill {
        if let Err(e) = sigterm(pid) {
            eprintln!("adtap-drain: {e}");
            return 3;
        }
    }
    if o.then_quit {
        let quit = Admin::new(&o.admin, Duration::from_secs(5)).and_then(|a| a.quit());
        if let Err(e) = quit {
            eprintln!("adtap-drain: {e}");
            return 3;
        }
    }
    code
}

fn signal_set(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a local sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
        set
    }
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => u8::try_from(c).unwrap_or(1),
        (None, Some(sig)) => u8::try_from(128 + sig).unwrap_or(1),
        _ => 1,
    }
}

/// The wrapper: the child runs with the signals it would get unblocked; this process waits
/// for SIGTERM, SIGINT or the child's exit (SIGCHLD) with `sigwait`, so no handler runs in a
/// signal context.
fn run_exec(o: &Opts) -> u8 {
    use std::os::unix::process::CommandExt;
    let set = signal_set(&[libc::SIGTERM, libc::SIGINT, libc::SIGCHLD]);
    // SAFETY: blocking signals in this (still single-threaded) process before the child starts.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    let (program, args) = match o.exec.split_first() {
        Some(p) => p,
        None => return 2,
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    // SAFETY: sigprocmask and prctl are async-signal-safe. The child gets the default (empty)
    // mask, and SIGTERM should this wrapper die first (killed, not stopped), so that Envoy never
    // outlives it.
    unsafe {
        cmd.pre_exec(|| {
            let empty = signal_set(&[]);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("adtap-drain: starting {program}: {e}");
            return 3;
        }
    };
    let Ok(pid) = i32::try_from(child.id()) else {
        return 3;
    };
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: waits for one of the blocked signals in `set`.
        unsafe { libc::sigwait(&set, &mut sig) };
        if sig == libc::SIGCHLD {
            match child.try_wait() {
                Ok(Some(status)) => return exit_code(status),
                Ok(None) => continue,
                Err(e) => {
                    eprintln!("adtap-drain: waiting for {program}: {e}");
                    return 3;
                }
            }
        }
        eprintln!("adtap-drain: signal {sig}: draining {program} (pid {pid})");
        drain(o);
        if let Err(e) = sigterm(pid) {
            eprintln!("adtap-drain: {e}");
        }
        return match child.wait() {
            Ok(status) => exit_code(status),
            Err(e) => {
                eprintln!("adtap-drain: waiting for {program}: {e}");
                3
            }
        };
    }
}

fn main() -> ExitCode {
    let o = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) => {
            if e.is_empty() {
                print!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("adtap-drain: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    ExitCode::from(if o.exec.is_empty() {
        run_once(&o)
    } else {
        run_exec(&o)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> impl Iterator<Item = String> + '_ {
        s.split_whitespace().map(String::from)
    }

    #[test]
    fn parses_the_options_and_keeps_everything_after_exec() {
        let o = parse_args(args(
            "--admin 127.0.0.1:1 --timeout 2.5 --inbound-only --exec envoy -c x.yaml --timeout 9",
        ))
        .unwrap();
        assert_eq!(o.admin, "127.0.0.1:1");
        assert_eq!(o.wait.timeout, Duration::from_millis(2500));
        assert!(o.inbound_only && o.drain);
        assert_eq!(o.exec, ["envoy", "-c", "x.yaml", "--timeout", "9"]);
        assert!(parse_args(args("--timeout soon")).is_err());
        assert!(parse_args(args("--then-quit --exec envoy")).is_err());
        assert!(parse_args(args("--exec")).is_err());
        assert_eq!(
            parse_args(args("--then-kill 7")).unwrap().then_kill,
            Some(7)
        );
    }
}
