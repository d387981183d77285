//! exec, attach, port-forward and logs against the real control plane with
//! KWOK's simulated nodes (kube-testenv's `shared_with_nodes`): Pods become
//! Running on nodes whose kubelet API is KWOK's server on 127.0.0.1, which
//! runs exec'd commands on this machine, serves log files and forwards
//! ports to local servers. Each result is compared with kubectl's on the
//! same Pod.

use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube_client::api::remote::{AttachParams, ProcessStatus, io_error_cause};
use kube_client::api::subresource::LogParams;
use kube_client::{Api, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::nodes::{
    client, cri_log, env, kubectl, plane, read_all, running_pod, seconds_ago, within,
};

#[tokio::test]
async fn exec_gives_stdout_stderr_and_the_exit_code_as_kubectl_does() {
    let (pods, ns) = running_pod("remote-exec", "shell").await;
    let script = "echo out; echo err >&2; exit 3";
    let mut process = pods
        .exec(
            "shell",
            ["sh", "-c", script],
            &AttachParams::default().container("main"),
        )
        .await
        .unwrap();
    assert_eq!(process.protocol(), "v5.channel.k8s.io");
    let (stdout, stderr) = (process.stdout().unwrap(), process.stderr().unwrap());
    let status = process.take_status().unwrap();
    let (stdout, stderr, status) = within(30, async {
        tokio::join!(read_all(stdout), read_all(stderr), status)
    })
    .await;
    let (stdout, stderr, status) = (stdout.unwrap(), stderr.unwrap(), status.unwrap());
    let kubectl = kubectl(&ns)
        .args(["exec", "shell", "-c", "main", "--", "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(stdout, kubectl.stdout, "stdout byte-identical to kubectl's");
    assert_eq!(stdout, b"out\n");
    assert_eq!(stderr, b"err\n");
    // kubectl's stderr is the remote stderr, then its own report of the
    // status, which must be the one we decoded.
    let kubectl_stderr = String::from_utf8_lossy(&kubectl.stderr);
    assert!(kubectl.stderr.starts_with(&stderr), "{kubectl_stderr}");
    // A kubelet reports a non-zero exit as NonZeroExitCode/ExitCode, and
    // kubectl then exits with that code. (KWOK v0.8 itself reports an
    // InternalError instead; kube-testenv builds it with that fixed.)
    assert_eq!(status, ProcessStatus::ExitCode(3), "{kubectl_stderr}");
    assert_eq!(kubectl.status.code(), Some(3), "{kubectl_stderr}");

    // Success is Success.
    let mut ok = pods
        .exec("shell", ["true"], &AttachParams::default())
        .await
        .unwrap();
    assert_eq!(
        within(30, ok.take_status().unwrap()).await.unwrap(),
        ProcessStatus::Success
    );
}

#[tokio::test]
async fn ten_mib_of_random_stdin_come_back_unchanged() {
    let (pods, _ns) = running_pod("remote-cat", "cat").await;
    const SIZE: usize = 10 * 1024 * 1024;
    let data: Vec<u8> = (0..SIZE).map(|_| fastrand::u8(..)).collect();
    // `cat` ends only when the end of stdin reaches it (the v5 close
    // signal; kube-testenv builds KWOK with its stdin pass-through fixed).
    let mut process = pods
        .exec("cat", ["cat"], &AttachParams::default().stdin(true))
        .await
        .unwrap();
    let mut stdin = process.stdin().unwrap();
    let stdout = process.stdout().unwrap();
    let status = process.take_status().unwrap();
    let input = data.clone();
    let writer = async move {
        stdin.write_all(&input).await.unwrap();
        stdin.shutdown().await.unwrap();
    };
    let (_, echoed, status) = within(120, async {
        tokio::join!(writer, read_all(stdout), status)
    })
    .await;
    let echoed = echoed.unwrap();
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "the bytes differ");
    assert_eq!(status.unwrap(), ProcessStatus::Success);
}

#[tokio::test]
async fn exec_of_a_missing_pod_is_not_found() {
    let ns = env().namespace("remote-missing").await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client(), &ns);
    let e = pods
        .exec("nobody", ["true"], &AttachParams::default())
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    let e = pods
        .exec("a/b", ["true"], &AttachParams::default())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidPathSegment { .. }), "{e:?}");
}

#[tokio::test]
async fn attach_sees_the_containers_output() {
    let (pods, ns) = running_pod("remote-attach", "talker").await;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        cri_log(&[("2026-01-01T10:00:00.000000000Z", "before attach")]),
    )
    .unwrap();
    plane()
        .serve_pod_logs(&ns, "talker", "main", file.path())
        .await
        .unwrap();
    let ap = AttachParams {
        stderr: false,
        ..AttachParams::default()
    };
    let mut process = pods.attach("talker", &ap).await.unwrap();
    let mut stdout = process.stdout().unwrap();
    // What the container writes while we are attached reaches us (the rule
    // takes effect once KWOK has seen it, so keep writing until it does).
    let path = file.path().to_path_buf();
    let writer = tokio::spawn(async move {
        for i in 0.. {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            let line = format!("attached line {i}");
            f.write_all(cri_log(&[(seconds_ago(0).as_str(), line.as_str())]).as_bytes())
                .unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("attached line") {
            match stdout.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await;
    writer.abort();
    process.abort();
    assert_eq!(
        found,
        Ok(true),
        "attach showed {:?}",
        String::from_utf8_lossy(&seen)
    );
}

/// A one-request-per-connection HTTP server on 127.0.0.1 answering each
/// request with `hello from <path>`.
async fn http_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&request);
                let path = line.split(' ').nth(1).unwrap_or("?").to_string();
                let body = format!("hello from {path}");
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    addr
}

/// GETs `path` over `conn` and returns the body, read by its
/// Content-Length: KWOK's tunnel does not pass on the target's close, and
/// the port-forward protocol cannot half-close, so the connection stays
/// open after the answer.
async fn get_over(
    mut conn: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    path: &str,
) -> std::io::Result<String> {
    conn.write_all(format!("GET {path} HTTP/1.1\r\nHost: pod\r\n\r\n").as_bytes())
        .await?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if answer.len() >= end + 4 + length {
                let body = &answer[end + 4..end + 4 + length];
                return Ok(String::from_utf8_lossy(body).into_owned());
            }
        }
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "the answer ended early: {:?}",
                    String::from_utf8_lossy(&answer)
                ),
            ));
        }
        answer.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn port_forward_answers_100_concurrent_requests_and_reports_a_closed_port() {
    let (pods, ns) = running_pod("remote-pf", "server").await;
    let target = http_server().await;
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    plane()
        .forward_pod_port(&ns, "server", 9090, closed)
        .await
        .unwrap();
    plane()
        .forward_pod_port(&ns, "server", 8080, target)
        .await
        .unwrap();
    // Rules take effect once KWOK has seen them.
    let started = Instant::now();
    loop {
        let stream = pods.portforward("server", 8080).await.unwrap();
        match within(10, get_over(stream, "/first")).await {
            Ok(body) if body == "hello from /first" => break,
            other => assert!(
                started.elapsed() < Duration::from_secs(30),
                "no answer through port-forward: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // 100 concurrent connections through the local listener.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let forwarder = pods.portforward_listener("server", 8080, listener).unwrap();
    let local = forwarder.local_addr();
    let requests = (0..100).map(|i| async move {
        let conn = tokio::net::TcpStream::connect(local).await.unwrap();
        (i, get_over(conn, &format!("/r{i}")).await)
    });
    let answers = within(120, futures::future::join_all(requests)).await;
    for (i, answer) in answers {
        assert_eq!(answer.unwrap(), format!("hello from /r{i}"));
    }

    // kubectl's port-forward gives the same answer.
    let mut child = kubectl(&ns)
        .args([
            "port-forward",
            "--address",
            "127.0.0.1",
            "pod/server",
            ":8080",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let port = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout).lines();
        let line = lines.next().unwrap().unwrap();
        // "Forwarding from 127.0.0.1:PORT -> 8080"
        let port: u16 = line
            .split(" -> ")
            .next()
            .and_then(|s| s.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        std::thread::spawn(move || lines.for_each(drop));
        port
    })
    .await
    .unwrap();
    let conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let theirs = within(30, get_over(conn, "/r7")).await.unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let conn = tokio::net::TcpStream::connect(local).await.unwrap();
    let ours = within(30, get_over(conn, "/r7")).await.unwrap();
    assert_eq!(ours, theirs);
    drop(forwarder);

    // The closed port: a typed error on read.
    let mut stream = pods.portforward("server", 9090).await.unwrap();
    let _ = stream.write_all(b"GET / HTTP/1.1\r\n\r\n").await;
    let mut buf = Vec::new();
    let e = within(30, stream.read_to_end(&mut buf)).await.unwrap_err();
    match io_error_cause(&e) {
        Some(Error::PortForward {
            port: 9090,
            message,
            ..
        }) => {
            assert!(!message.is_empty())
        }
        other => panic!("expected a PortForward error, got {other:?} ({e})"),
    }
}

#[tokio::test]
async fn logs_follow_a_growing_file_and_agree_with_kubectl() {
    use futures::StreamExt;
    let (pods, ns) = running_pod("remote-logs", "talker").await;
    let file = tempfile::NamedTempFile::new().unwrap();
    // Two old lines and one from now, so that `since` has something to cut.
    let recent = seconds_ago(5);
    std::fs::write(
        file.path(),
        cri_log(&[
            ("2026-01-01T10:00:00.000000000Z", "one"),
            ("2026-01-01T10:00:01.000000000Z", "two"),
            (recent.as_str(), "three"),
        ]),
    )
    .unwrap();
    plane()
        .serve_pod_logs(&ns, "talker", "main", file.path())
        .await
        .unwrap();
    let lp = LogParams {
        container: Some("main".into()),
        ..LogParams::default()
    };
    let started = Instant::now();
    while pods.logs("talker", &lp).await.unwrap() != "one\ntwo\nthree\n" {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the served file never showed"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // tail and since agree with kubectl.
    let since_time = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-01-01T10:00:01Z".parse().unwrap(),
    );
    let cases: [(LogParams, &[&str]); 4] = [
        (
            LogParams {
                since_time: Some(since_time.clone()),
                ..lp.clone()
            },
            &["--since-time=2026-01-01T10:00:01Z"],
        ),
        (
            LogParams {
                tail_lines: Some(1),
                ..lp.clone()
            },
            &["--tail=1"],
        ),
        (
            LogParams {
                since_seconds: Some(60),
                ..lp.clone()
            },
            &["--since=60s"],
        ),
        (
            LogParams {
                tail_lines: Some(2),
                timestamps: true,
                ..lp.clone()
            },
            &["--tail=2", "--timestamps"],
        ),
    ];
    for (params, flags) in cases {
        let ours = pods.logs("talker", &params).await.unwrap();
        let theirs = kubectl(&ns)
            .args(["logs", "talker", "-c", "main"])
            .args(flags)
            .output()
            .unwrap();
        assert_eq!(ours.as_bytes(), theirs.stdout, "{flags:?}");
    }
    let since = |params: LogParams| {
        let pods = pods.clone();
        async move { pods.logs("talker", &params).await.unwrap() }
    };
    assert_eq!(
        since(LogParams {
            since_seconds: Some(60),
            ..lp.clone()
        })
        .await,
        "three\n"
    );
    assert_eq!(
        since(LogParams {
            since_time: Some(since_time),
            ..lp.clone()
        })
        .await,
        "two\nthree\n"
    );
    assert_eq!(
        pods.logs(
            "talker",
            &LogParams {
                tail_lines: Some(1),
                ..lp.clone()
            }
        )
        .await
        .unwrap(),
        "three\n"
    );

    // follow sees lines appended after it started.
    let follow = LogParams {
        follow: true,
        ..lp.clone()
    };
    let mut lines = Box::pin(pods.log_lines("talker", &follow).await.unwrap());
    for want in ["one", "two", "three"] {
        assert_eq!(within(30, lines.next()).await.unwrap().unwrap(), want);
    }
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(file.path())
            .unwrap();
        let at = seconds_ago(0);
        f.write_all(cri_log(&[(at.as_str(), "four")]).as_bytes())
            .unwrap();
    }
    assert_eq!(within(30, lines.next()).await.unwrap().unwrap(), "four");
}
