//! The binary: settings and exit codes, and the commands an admin runs (enqueue, run --once,
//! status, requeue), against the per-test database and the sandbox.

use jetpack_worker::domain::JobState;
use std::process::Command;

use sqlx::mysql::MySqlPool;

use crate::helpers::Env;

/// DATABASE_URL pointing at this test's database.
pub async fn database_url(pool: &MySqlPool) -> String {
    let db: String = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(pool)
        .await
        .unwrap();
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let mut url = url::Url::parse(&base).unwrap();
    url.set_path(&db);
    url.to_string()
}

pub fn worker_command(database_url: &str, api_base: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jetpack-worker"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("JETPACK_API_BASE", api_base)
        .env("JETPACK_POLL_INTERVAL", "100ms");
    cmd
}

/// Runs the binary without blocking the test's runtime (the sandbox answers on it).
pub async fn output(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// The binary with `args`, run off the runtime thread.
async fn run(database_url: &str, api_base: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = worker_command(database_url, api_base);
    cmd.args(args);
    output(cmd).await
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn bad_settings_fail_at_start_with_exit_2_and_one_line() {
    let base = "http://127.0.0.1:9";
    let cases: [(&[&str], &str, &str); 4] = [
        (&["status"], "", "DATABASE_URL is required"),
        (
            &["run", "--concurrency", "0"],
            "mysql://u:p@127.0.0.1/x",
            "concurrency",
        ),
        (
            &["run", "--poll-interval", "often"],
            "mysql://u:p@127.0.0.1/x",
            "poll-interval",
        ),
        (
            &["run"],
            "postgres://x",
            "DATABASE_URL must start with mysql://",
        ),
    ];
    for (args, url, expect) in cases {
        let out = worker_command(url, base).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    let out = worker_command("mysql://u:p@127.0.0.1/x", "ftp://nope")
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[sqlx::test(migrations = false)]
async fn run_once_fails_when_the_tables_are_missing(pool: MySqlPool) {
    let out = run(
        &database_url(&pool).await,
        "http://127.0.0.1:9",
        &["run", "--once"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("run `jetpack-worker migrate`"),
        "{}",
        text(&out)
    );

    let out = run(
        &database_url(&pool).await,
        "http://127.0.0.1:9",
        &["migrate"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'mod_jetpack_jobs'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(tables, 1);
    // Idempotent.
    let again = run(
        &database_url(&pool).await,
        "http://127.0.0.1:9",
        &["migrate"],
    )
    .await;
    assert!(again.status.success());
}

#[sqlx::test]
async fn enqueue_run_status_and_requeue_from_the_command_line(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let url = database_url(&env.db).await;
    let api = env.sandbox.base_url();
    let pid = env.product("").await;
    let good = env
        .service(pid, "Active", "cli.example", "admin", "premium")
        .await;
    let bad = env
        .service(pid, "Active", "cli-bad.example", "nobody", "premium")
        .await;

    for sid in [good, bad] {
        let out = run(&url, &api, &["enqueue", &sid.to_string()]).await;
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("queued provision job #"),
            "{}",
            text(&out)
        );
    }
    let out = run(&url, &api, &["enqueue", "99999"]).await;
    assert_eq!(out.status.code(), Some(1));

    let out = run(&url, &api, &["run", "--once"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(env.job(good).await.state, JobState::Done);
    assert_eq!(env.job(good).await.requested_by, "cli");

    let out = run(&url, &api, &["status", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let counts = report["counts"].as_array().unwrap();
    assert!(
        counts.iter().any(|c| c[0] == "done" && c[1] == 1),
        "{report}"
    );
    assert!(
        counts.iter().any(|c| c[0] == "failed" && c[1] == 1),
        "{report}"
    );
    assert!(
        report["requests_pending"] == 0,
        "every recorded request was applied: {report}"
    );
    assert!(
        report["recent_failures"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("invalid_local_user")
    );

    let out = run(&url, &api, &["status"]).await;
    let shown = text(&out);
    assert!(
        shown.contains("failed       1") && shown.contains("invalid_local_user"),
        "{shown}"
    );

    let out = run(&url, &api, &["requeue", "--all-failed"]).await;
    assert!(text(&out).contains("requeued 1 job(s)"), "{}", text(&out));
    let job = env.job(bad).await;
    assert_eq!((job.state, job.attempts), (JobState::Queued, 0));

    // Named services that cannot be requeued say why instead of a bare count.
    let out = run(
        &url,
        &api,
        &["requeue", &good.to_string(), &bad.to_string(), "999999"],
    )
    .await;
    let shown = text(&out);
    assert!(shown.contains("requeued 0 job(s)"), "{shown}");
    assert!(
        shown.contains(&format!("service {good}: nothing to retry: the latest job"))
            && shown.contains("(provision) is done, not failed"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("service {bad}: job #"))
            && shown.contains("already does this; it is due now"),
        "{shown}"
    );
    assert!(
        shown.contains("service 999999: nothing to retry: the service has no job"),
        "{shown}"
    );
}

/// Logs go to stderr, data to stdout: at `RUST_LOG=trace` (every library's debug lines on),
/// `status --json` and `check --json` still print exactly one JSON document on stdout, and the
/// text `check` prints only its report lines; the log lines are on stderr.
#[sqlx::test]
async fn stdout_carries_only_data_at_trace_level(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let url = database_url(&env.db).await;
    let api = env.sandbox.base_url();
    let pid = env.product("").await;
    env.service(pid, "Active", "quiet.example", "admin", "premium")
        .await;
    let traced = |args: &'static [&'static str]| {
        let mut cmd = worker_command(&url, &api);
        cmd.env("RUST_LOG", "trace").args(args);
        output(cmd)
    };
    let out = traced(&["run", "--once"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        out.stdout.is_empty(),
        "run --once printed on stdout: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(" DEBUG "),
        "the log (every level up to trace) went to stderr"
    );
    for args in [&["status", "--json"][..], &["check", "--json"][..]] {
        let out = traced(args).await;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(&stdout);
        assert!(
            parsed.is_ok(),
            "{args:?} stdout is not one JSON document:\n{stdout}"
        );
        assert!(
            !out.stderr.is_empty(),
            "{args:?}: the log lines are on stderr"
        );
    }
    let out = traced(&["check"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines() {
        assert!(
            ["ok   ", "FAIL ", "     fix: ", "all checks passed"]
                .iter()
                .any(|p| line.starts_with(p))
                || line.ends_with("problem(s) found"),
            "check printed a line that is not part of its report: {line:?}"
        );
    }
    assert!(stdout.lines().count() >= 3, "{stdout}");
}

/// The scripts find the binaries where cargo puts them: `bin_dir` follows `CARGO_TARGET_DIR`
/// (a shared build host's setting), and no script names `target/debug` or `target/release`
/// itself (the demo failed with "No such file or directory" under `CARGO_TARGET_DIR`).
#[test]
fn scripts_find_the_binaries_under_cargo_target_dir() {
    let root = env!("CARGO_MANIFEST_DIR");
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .current_dir(root)
        .env("CARGO_TARGET_DIR", elsewhere.path())
        .args([
            "-c",
            "source scripts/lib/bins.sh && bin_dir debug && bin_dir release",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let want = format!("{0}/debug\n{0}/release\n", elsewhere.path().display());
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    for entry in std::fs::read_dir(format!("{root}/scripts")).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let script = std::fs::read_to_string(&path).unwrap();
        for line in script.lines().filter(|l| !l.trim_start().starts_with('#')) {
            assert!(
                !line.contains("target/debug") && !line.contains("target/release"),
                "{} names the target directory itself: {line}",
                path.display()
            );
        }
    }
}
