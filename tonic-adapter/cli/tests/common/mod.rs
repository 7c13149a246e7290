//! What the CLI's test binaries share: finding grpc-health-probe and running a command to
//! completion within a time limit. Each binary uses part of it.
#![allow(dead_code)]

use std::{
    path::PathBuf,
    process::{Command, Output, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

/// grpc-health-probe from PATH or ~/go/bin (ci/install-20-tonic.sh installs it); missing is a
/// failure, not a skip.
pub(crate) fn probe() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("grpc-health-probe"));
    let in_go = std::env::var_os("HOME").map(|h| PathBuf::from(h).join("go/bin/grpc-health-probe"));
    on_path.chain(in_go).find(|p| p.is_file()).expect(
        "grpc-health-probe not found on PATH or in ~/go/bin (ci/install-20-tonic.sh installs it)",
    )
}

/// Runs `command` (stdin closed, stdout and stderr captured, both read at once) to
/// completion; kills it and panics if it takes longer than `timeout`.
pub(crate) fn run_within(mut command: Command, timeout: Duration) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("wait for the command"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("{command:?} did not finish in time")
        }
    }
}
