//! The client secret and bearer tokens never appear in tblmodulelog, tblactivitylog, job rows
//! or the process log (the real binary at RUST_LOG=debug).

use jetpack_worker::domain::{Action, RequestedBy};
use jetpack_worker::sandbox::{SandboxConfig, ScriptedReply};
use sqlx::mysql::MySqlPool;

use crate::cli::{database_url, output, worker_command};
use crate::helpers::{Env, Layout};

const SECRET: &str = "s3cr3t-Partner-Key-0042";

async fn all_text(env: &Env) -> String {
    let mut text = String::new();
    for sql in [
        "SELECT CONCAT_WS('\\n', module, action, request, response, arrdata) FROM tblmodulelog",
        "SELECT CONCAT_WS('\\n', description, user) FROM tblactivitylog",
        "SELECT CONCAT_WS('\\n', COALESCE(last_error,''), COALESCE(result,''), COALESCE(lease_owner,'')) FROM mod_jetpack_jobs",
        "SELECT value FROM tblcustomfieldsvalues",
        "SELECT last_attempt_error FROM tblmodulequeue",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&env.db).await.unwrap();
        text.push_str(&rows.join("\n"));
        text.push('\n');
    }
    text
}

#[sqlx::test]
async fn secrets_never_reach_tables_or_the_process_log(pool: MySqlPool) {
    let config = SandboxConfig {
        credentials: vec![("partner-1".into(), SECRET.into())],
        ..SandboxConfig::default()
    };
    let env = Env::with(pool, Layout::V8, config).await;
    env.exec("INSERT INTO tblconfiguration (setting, value) VALUES ('ModuleDebugMode', 'on')")
        .await;
    let fields = [
        "Site URL",
        "Local User",
        "Plan",
        "jetpack_provisioning_details",
    ];
    let good = env.product_with("", "partner-1", SECRET, &fields).await;
    let bad = env
        .product_with("", "partner-1", &format!("{SECRET}-wrong"), &fields)
        .await;
    let ok = env
        .service(good, "Active", "ok.example", "admin", "premium")
        .await;
    let refused = env
        .service(good, "Active", "refused.example", "nobody", "premium")
        .await;
    let revoked = env
        .service(good, "Active", "revoked.example", "admin", "premium")
        .await;
    let badcreds = env
        .service(bad, "Active", "badcreds.example", "admin", "premium")
        .await;
    env.sandbox.state().script(
        "revoked.example",
        vec![ScriptedReply::Status {
            code: 401,
            body: r#"{"error":"invalid_token","message":"The OAuth2 token is invalid."}"#.into(),
            retry_after: None,
        }],
    );
    for sid in [ok, refused, revoked, badcreds] {
        env.store
            .enqueue(sid, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
    }

    let mut cmd = worker_command(&database_url(&env.db).await, &env.sandbox.base_url());
    cmd.args(["run", "--once"]).env("RUST_LOG", "debug");
    let output = output(cmd).await;
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{log}");
    assert!(
        log.contains("job failed"),
        "the process log reports failures: {log}"
    );

    assert_eq!(env.job(ok).await.state, "done");
    assert_eq!(env.job(revoked).await.state, "done");
    assert_eq!(env.job(refused).await.state, "failed");
    assert_eq!(env.job(badcreds).await.state, "failed");
    let modulelog: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tblmodulelog")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert!(
        modulelog >= 5,
        "module log written in debug mode ({modulelog} rows)"
    );
    let tables = all_text(&env).await;
    assert!(
        tables.contains("Bearer ****"),
        "tokens are masked, not dropped"
    );
    for text in [&tables, &log] {
        assert!(!text.contains(SECRET), "client secret leaked");
        assert!(!text.contains("sbx_"), "bearer token leaked");
    }
}

#[sqlx::test]
async fn nothing_goes_to_the_module_log_when_debug_mode_is_off(pool: MySqlPool) {
    let env = Env::new(pool).await;
    env.exec("INSERT INTO tblconfiguration (setting, value) VALUES ('ModuleDebugMode', '')")
        .await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "quiet.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    assert_eq!(env.job(sid).await.state, "done");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tblmodulelog")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert_eq!(n, 0);
}
