//! Shared by the stack's test binaries (each takes what it needs): the lock that runs one stack
//! at a time ([`serial`]) and the two-at-a-time runner of Envoy starts ([`two_at_a_time`]); the
//! stack's Envoy configuration for a test's own Envoy ([`render`], [`as_struct_configuration`]
//! for adtap's configuration as a Struct); the check that records arrived exactly once
//! ([`assert_exactly_once`]); for the deployment tests (`remote_code.rs`, `drain_tool.rs`),
//! which run Envoy configurations the stack does not build (the shipped examples, Envoy under
//! a wrapper) in front of [`adtap_stack::Backends`], a tiny HTTP server that serves one file
//! and the YAML and hashing helpers; the compiler of the probe modules ([`compile_probe`]); and
//! the independent schema check ([`check_jsonschema`]).
#![allow(dead_code)]

use adtap_stack::envoy::{Deployment, Render};
use adtap_stack::kafka::KafkaRecord;
use adtap_stack::traffic::AdRequest;
use adtap_stack::verify::Reconciliation;
use adtap_stack::Backends;
use serde_json::{json, Value};
use sha2::Digest as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

/// One Envoy stack at a time in a test binary (two cores); a panicking test does not poison it.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads the records of `expected` back from `backends` (waiting at most 10 s for all of them)
/// and checks that they are exactly one correct record per request, sent within `window_ms`
/// ([`adtap_stack::verify::reconcile`]).
pub fn assert_exactly_once(
    backends: &Backends,
    expected: &[AdRequest],
    window_ms: (u64, u64),
) -> (Vec<KafkaRecord>, Reconciliation) {
    let records = backends
        .read_records_expecting(expected.len(), Duration::from_secs(10))
        .unwrap();
    let rec = backends.reconcile(expected, &records, window_ms);
    assert!(rec.is_perfect(), "{}", rec.problems());
    assert_eq!(records.len(), expected.len());
    (records, rec)
}

/// `f(0..n)`, two at a time (each call runs one Envoy, which mostly compiles the module), in
/// order; each call gets its own directory.
pub fn two_at_a_time<T: Send>(n: usize, f: impl Fn(usize, &Path) -> T + Sync) -> Vec<T> {
    let dir = tempfile::tempdir().unwrap();
    let next = AtomicUsize::new(0);
    let done = Mutex::new(std::collections::BTreeMap::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                let sub = dir.path().join(i.to_string());
                std::fs::create_dir_all(&sub).unwrap();
                let out = f(i, &sub);
                done.lock().unwrap().insert(i, out);
            });
        }
    });
    done.into_inner().unwrap().into_values().collect()
}

/// An HTTP/1.1 server on 127.0.0.1 that answers every GET with one file's bytes, and counts
/// the requests; stopped when dropped.
pub struct FileServer {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FileServer {
    /// Serves `body` on a free port.
    pub fn start(body: Vec<u8>) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (Arc::clone(&hits), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                h.fetch_add(1, Ordering::SeqCst);
                let _ = serve(conn, &body);
            }
        });
        FileServer {
            addr,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// One request per connection: read the head, answer, close.
fn serve(conn: TcpStream, body: &[u8]) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 && line != "\r\n" {
        line.clear();
    }
    let mut w = conn;
    write!(
        w,
        "HTTP/1.1 200 OK\r\ncontent-type: application/wasm\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )?;
    w.write_all(body)?;
    w.flush()
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The stack's Envoy configuration ([`Render`]) for `deployment`, with adtap loaded from `wasm`
/// and configured by `text`, and its clusters at `ports` (the ad server's, the REST proxy's; a
/// port nothing listens on where only loading is looked at).
pub fn render(wasm: &Path, text: &str, deployment: Deployment, ports: (u16, u16)) -> String {
    Render {
        ad_server_port: ports.0,
        rest_port: ports.1,
        rest_http2: true,
        wasm: wasm.to_path_buf(),
        adtap_config: text.to_string(),
        deployment,
    }
    .render()
    .unwrap()
}

/// The `@type` of a `google.protobuf.StringValue` (adtap's configuration as JSON text).
pub const STRING_VALUE: &str = "type.googleapis.com/google.protobuf.StringValue";
/// The `@type` of a `google.protobuf.Struct` (adtap's configuration as YAML).
pub const STRUCT: &str = "type.googleapis.com/google.protobuf.Struct";

/// `yaml` (rendered by [`adtap_stack::envoy::Render`]) with every adtap `configuration` holding `text` as a
/// `StringValue` replaced by the Struct `doc`: the form an operator writes as YAML.
pub fn as_struct_configuration(yaml: &str, text: &str, doc: &Value) -> String {
    let string_form = json!({"@type": STRING_VALUE, "value": text}).to_string();
    let struct_form = json!({"@type": STRUCT, "value": doc}).to_string();
    assert!(
        yaml.contains(&string_form),
        "the rendered config has no StringValue configuration to replace"
    );
    yaml.replace(&string_form, &struct_form)
}

/// sha256 in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A YAML file under the repository as a JSON value (YAML 1.2 core: what Kubernetes and Envoy
/// read), one per document.
pub fn yaml_docs(rel: &str) -> Vec<Value> {
    let path = adtap_stack::repo_root().join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    yaml_docs_of(&text)
}

/// Every document of a YAML text as JSON values (empty documents left out).
pub fn yaml_docs_of(text: &str) -> Vec<Value> {
    use serde::Deserialize as _;
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// The cluster named `name` in an Envoy bootstrap.
pub fn cluster_mut<'a>(bootstrap: &'a mut Value, name: &str) -> &'a mut Value {
    bootstrap["static_resources"]["clusters"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no cluster {name}"))
}

/// Points a static bootstrap's cluster `name` at `addr` (its one endpoint).
pub fn point_cluster(bootstrap: &mut Value, name: &str, addr: SocketAddr) {
    let c = cluster_mut(bootstrap, name);
    c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] = json!(
        {"socket_address": {"address": addr.ip().to_string(), "port_value": addr.port()}}
    );
}

/// What every probe module starts with: `no_std` without a panic path, a bump allocator over a
/// static heap for `proxy_on_memory_allocate`, the ABI marker (0.2.1) and a VM start that
/// accepts. The probe's own source adds its imports and callbacks.
const PROBE_PRELUDE: &str = r#"#![no_std]
#![no_main]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! { core::arch::wasm32::unreachable() }
static mut HEAP: [u8; 65536] = [0; 65536];
static mut NEXT: usize = 0;
#[no_mangle] pub extern "C" fn proxy_abi_version_0_2_1() {}
#[no_mangle] pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    unsafe {
        if NEXT + size + 8 > 65536 { NEXT = 0; }
        let start = (NEXT + 7) & !7;
        NEXT = start + size;
        core::ptr::addr_of_mut!(HEAP).cast::<u8>().add(start)
    }
}
#[no_mangle] pub extern "C" fn proxy_on_vm_start(_: u32, _: u32) -> u32 { 1 }
"#;

/// Compiles the Rust proxy-wasm probe `source` (after [`PROBE_PRELUDE`]) into `dir/probe.wasm`;
/// `None` (with a note saying that `what` is skipped) when rustc cannot target
/// wasm32-unknown-unknown here.
pub fn compile_probe(dir: &Path, source: &str, what: &str) -> Option<PathBuf> {
    let src = dir.join("probe.rs");
    let out = dir.join("probe.wasm");
    std::fs::write(&src, format!("{PROBE_PRELUDE}{source}")).unwrap();
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let result = Command::new(rustc)
        .args([
            "--target",
            "wasm32-unknown-unknown",
            "--crate-type",
            "cdylib",
        ])
        .args(["--edition", "2021", "-O", "-C", "panic=abort", "-o"])
        .arg(&out)
        .arg(&src)
        .output();
    match result {
        Ok(o) if o.status.success() => Some(out),
        Ok(o) => {
            eprintln!(
                "note: skipping {what}: rustc could not build the probe module (rustup target \
                 add wasm32-unknown-unknown):\n{}",
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Err(e) => {
            eprintln!("note: skipping {what}: no rustc ({e})");
            None
        }
    }
}

/// `check-jsonschema` (from `./build.sh setup`'s virtualenv: an implementation independent of
/// ours) of every file in `instances` against `schema`: `Ok`, or its report.
pub fn check_jsonschema(schema: &Path, instances: &[PathBuf]) -> Result<(), String> {
    let bin = adtap_stack::cache_dir().join("venv/bin/check-jsonschema");
    assert!(
        bin.exists(),
        "{} missing: run ./build.sh setup",
        bin.display()
    );
    let out = Command::new(bin)
        .arg("--schemafile")
        .arg(schema)
        .args(instances)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
