//! Child processes that cannot outlive the harness.
//!
//! Every process the stack starts (broker, REST proxy, Envoy) is a [`Child`]: its output goes to a
//! log file in the stack's temporary directory (read back for diagnostics and assertions), it is
//! killed and reaped on `Drop`, and it gets `PR_SET_PDEATHSIG(SIGKILL)` so that even a harness
//! killed with SIGKILL leaves no orphan behind.

use anyhow::{anyhow, Context as _, Result};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The signals tests send to children, re-exported so that callers need no `libc`.
pub use libc::{SIGKILL, SIGTERM};

/// A running child process with its output in a log file.
#[derive(Debug)]
pub struct Child {
    name: String,
    child: Option<std::process::Child>,
    log: PathBuf,
}

impl Child {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Child> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        Self::spawn_configured(name, cmd, log)
    }

    /// Starts `cmd` and waits (at most `timeout`) for the first line it prints on stdout, which
    /// is returned; later stdout lines and stderr go to `log`. For servers that announce the
    /// address they bound (`listening 127.0.0.1:PORT`).
    pub fn spawn_announcing(
        name: &str,
        mut cmd: Command,
        log: &Path,
        timeout: Duration,
    ) -> Result<(Child, String)> {
        let err = File::options().create(true).append(true).open(log)?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err));
        let mut child = Self::spawn_configured(name, cmd, log)?;
        let stdout = child
            .child
            .as_mut()
            .and_then(|c| c.stdout.take())
            .ok_or_else(|| anyhow!("{name}: no stdout pipe"))?;
        let (tx, rx) = mpsc::channel();
        let mut sink = File::options().create(true).append(true).open(log)?;
        // The pipe must keep being drained or the child would block on a full pipe.
        std::thread::spawn(move || {
            let mut first = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(tx) = first.take() {
                    let _ = tx.send(line.clone());
                }
                let _ = writeln!(sink, "{line}");
            }
        });
        match rx.recv_timeout(timeout) {
            Ok(line) => Ok((child, line)),
            Err(_) => {
                let status = child.try_wait()?;
                Err(anyhow!(
                    "{name} did not announce itself within {timeout:?} (exit: {status:?}); log:\n{}",
                    child.log_tail(40)
                ))
            }
        }
    }

    fn spawn_configured(name: &str, mut cmd: Command, log: &Path) -> Result<Child> {
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        Ok(Child {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// Process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// The exit status if the process has exited.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(c) => Ok(c.try_wait()?),
            None => Err(anyhow!("{} was already reaped", self.name)),
        }
    }

    /// Sends `signal` (e.g. [`SIGTERM`]) and waits up to `timeout` for the exit; on timeout the process is killed
    /// and an error returned.
    pub fn signal_and_wait(&mut self, signal: i32, timeout: Duration) -> Result<ExitStatus> {
        let Some(child) = self.child.as_mut() else {
            return Err(anyhow!("{} is not running", self.name));
        };
        let pid = libc::pid_t::try_from(child.id())?;
        // SAFETY: plain syscall on our own child's pid, which we have not reaped yet.
        unsafe {
            libc::kill(pid, signal);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(anyhow!(
                    "{} did not exit within {timeout:?} of signal {signal}",
                    self.name
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                self.child = None;
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and reap (idempotent).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The whole log.
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines
            .get(lines.len().saturating_sub(n)..)
            .unwrap_or_default()
            .join("\n")
    }

    /// Path of the log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` every `every` until it returns `Some` or `timeout` passes.
pub fn poll<T>(timeout: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}
