//! A real S3-compatible server for tests: one SeaweedFS (`weed mini`) per test, on free ports
//! of 127.0.0.1 only, with its own data folder, random credentials and a bucket.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use crate::{
    config::Secret,
    storage::{S3Settings, S3Storage},
};

/// Longest wait for the server to accept S3 requests.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for the server to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// One running `weed mini`; killed (and its folder removed) when dropped.
pub struct SeaweedFs {
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
    s3_port: u16,
    ports: Vec<u16>,
    bin: PathBuf,
    dir: PathBuf,
    args: Vec<String>,
    child: Option<tokio::process::Child>,
}

/// `weed`: `BOARDS_WEED_BIN`, then the project's `.cache/tools/bin/weed`, then `PATH`.
fn find_weed() -> PathBuf {
    if let Some(bin) = std::env::var_os("BOARDS_WEED_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    let cached = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/tools/bin/weed");
    if cached.is_file() {
        return cached;
    }
    if let Some(bin) = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("weed"))
        .find(|p| p.is_file())
    {
        return bin;
    }
    panic!(
        "SeaweedFS `weed` not found (BOARDS_WEED_BIN, {}, PATH): run scripts/install-seaweedfs.sh",
        cached.display()
    );
}

/// `n` distinct free TCP ports on 127.0.0.1 (all held at once, so no duplicates).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
        })
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()).unwrap_or_default())
        .collect()
}

fn random_token(len: usize) -> String {
    let mut s = String::new();
    while s.len() < len {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(len);
    s
}

impl SeaweedFs {
    /// Starts a server and creates its bucket; panics with the server's log when it does not
    /// come up.
    pub async fn start() -> SeaweedFs {
        let bin = find_weed();
        let dir = std::env::temp_dir().join(format!("boards-weed-{}", random_token(12)));
        for sub in ["data", "tmp"] {
            std::fs::create_dir_all(dir.join(sub))
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        let access_key = format!("AK{}", random_token(18).to_uppercase());
        let secret_key = random_token(40);
        let identities = serde_json::json!({"identities": [{
            "name": "boards-test",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]});
        std::fs::write(dir.join("identities.json"), identities.to_string())
            .unwrap_or_else(|e| panic!("cannot write the identities file: {e}"));
        // Every listener gets an explicit port. Ports are picked free, but another process
        // may take one before weed binds it: a server that exits during startup is started
        // again on fresh ports.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let ports = free_ports(10);
            let names = [
                "s3.port",
                "s3.port.grpc",
                "master.port",
                "master.port.grpc",
                "volume.port",
                "volume.port.grpc",
                "filer.port",
                "filer.port.grpc",
                "admin.port",
                "admin.port.grpc",
            ];
            let d = |p: &str| dir.join(p).display().to_string();
            let mut args: Vec<String> = vec![
                "mini".into(),
                format!("-dir={}", d("data")),
                format!("-s3.config={}", d("identities.json")),
                "-ip=127.0.0.1".into(),
                "-ip.bind=127.0.0.1".into(),
                // Nothing but 127.0.0.1: no telemetry, no extra gateways.
                "-master.telemetry=false".into(),
                "-webdav=false".into(),
                "-admin.ui=false".into(),
                "-s3.port.iceberg=0".into(),
                "-s3.port.lance=0".into(),
                // Like AWS: a put into a missing bucket fails rather than creating it.
                "-s3.autoCreateBucket=false".into(),
                format!("-filer.localSocket={}", d("tmp/filer.sock")),
                format!("-s3.localSocket={}", d("tmp/s3.sock")),
            ];
            args.extend(
                names
                    .iter()
                    .zip(&ports)
                    .map(|(name, port)| format!("-{name}={port}")),
            );
            let mut server = SeaweedFs {
                access_key: access_key.clone(),
                secret_key: secret_key.clone(),
                bucket: format!("boards-test-{}", random_token(8)),
                s3_port: ports[0],
                ports,
                bin: bin.clone(),
                dir: dir.clone(),
                args,
                child: None,
            };

            match server.try_launch().await {
                Ok(()) => return server,
                Err(log) if attempt < 3 => {
                    server.child = None;
                    eprintln!("weed exited during startup, retrying on other ports:\n{log}");
                }
                Err(log) => panic!("weed exited during startup three times:\n{log}"),
            }
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// Provider settings for this server's bucket, with its (static) credentials.
    pub fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint_url: Some(self.endpoint()),
            aws_access_key_id: Some(self.access_key.clone()),
            aws_secret_access_key: Some(Secret::new(self.secret_key.clone())),
            ..S3Settings::for_bucket(self.bucket.clone())
        }
    }

    /// A provider for this server's bucket.
    pub async fn storage(&self) -> S3Storage {
        S3Storage::new(self.settings())
            .await
            .unwrap_or_else(|e| panic!("S3 settings of the test server: {e}"))
    }

    /// Stops the server (SIGTERM, then waits for it to exit); data stays for [`Self::restart`].
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(STOP_TIMEOUT, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }

    /// Starts the server again on the same ports and data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }

    async fn launch(&mut self) {
        if let Err(log) = self.try_launch().await {
            panic!("weed exited during startup:\n{log}");
        }
    }

    async fn try_launch(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("weed.log"))
            .unwrap_or_else(|e| panic!("cannot open the weed log: {e}"));
        let log_err = log
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot open the weed log: {e}"));
        let child = tokio::process::Command::new(&self.bin)
            .args(&self.args)
            .current_dir(&self.dir)
            // glog files go to TMPDIR: keep them in the server's folder.
            .env("TMPDIR", self.dir.join("tmp"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.child = Some(child);
        self.wait_ready().await
    }

    /// Waits until the bucket exists and answers with these credentials (creating it once the
    /// S3 gateway is up).
    async fn wait_ready(&mut self) -> Result<(), String> {
        let storage = self.storage().await;
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!("({status})\n{}", self.log_tail()));
            }
            // Ready means the bucket exists and an object goes in and comes back (after a
            // restart the gateway answers before the volume server has registered again).
            let Err(last) = Self::round_trip(&storage).await else {
                return Ok(());
            };
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "SeaweedFS did not answer on {} within {} s (last error: {last}); log:\n{}",
                    self.endpoint(),
                    START_TIMEOUT.as_secs(),
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn round_trip(storage: &S3Storage) -> Result<(), crate::storage::StorageError> {
        use crate::storage::Storage as _;
        const KEY: &str = "boards-test-ready/probe.txt";
        storage.ensure_bucket().await?;
        storage
            .put(
                KEY,
                crate::storage::stream_of(&b"ready"[..]),
                "text/plain",
                16,
            )
            .await?;
        crate::storage::read_all(storage, KEY, 16).await?;
        storage.delete(KEY).await
    }

    /// The last lines of the server's output.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("weed.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            for _ in 0..50 {
                if child.try_wait().ok().flatten().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // A killed server leaves its sockets in /tmp (the gRPC ones cannot be moved).
        for port in &self.ports {
            for kind in [
                "admin-grpc",
                "filer-grpc",
                "master-grpc",
                "s3-grpc",
                "volume-grpc",
                "s3",
                "filer",
            ] {
                let _ = std::fs::remove_file(format!("/tmp/seaweedfs-{kind}-{port}.sock"));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
