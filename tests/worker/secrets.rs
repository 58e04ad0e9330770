//! The client secret and bearer tokens never appear, in any encoding (raw, JSON-escaped,
//! form- or percent-encoded), in any table of the database or in the process log (the real
//! binary at RUST_LOG=trace, stdout and stderr).

use jetpack_sandbox::{HOSTILE_TOKEN_PART, SandboxConfig, ScriptedReply};
use jetpack_worker::domain::JobState;
use jetpack_worker::domain::{Action, RequestedBy};
use sqlx::mysql::MySqlPool;
use sqlx::{AssertSqlSafe, Row};

use crate::cli::{database_url, output, worker_command};
use crate::helpers::{Env, Layout};

/// A client secret with every character an encoding changes.
const SECRET: &str = "s3cr3t/\"\\+%#& é€-Partner-Key-0042";

/// `s` as a JSON string body, ASCII only (`\u00e9`), hex digits in `upper` or lower case.
fn json_ascii(s: &str, upper: bool) -> String {
    let json = serde_json::to_string(s).unwrap();
    let mut out = String::new();
    for c in json[1..json.len() - 1].chars() {
        if c.is_ascii() {
            out.push(c);
            continue;
        }
        let mut units = [0u16; 2];
        for u in c.encode_utf16(&mut units) {
            out.push_str(&if upper {
                format!("\\u{u:04X}")
            } else {
                format!("\\u{u:04x}")
            });
        }
    }
    out
}

/// A percent-encoded text with the two hex digits after each `%` in lower case.
fn lower_hex(encoded: &str) -> String {
    let mut out = String::new();
    let mut left = 0;
    for c in encoded.chars() {
        out.push(if left > 0 { c.to_ascii_lowercase() } else { c });
        left = if left > 0 {
            left - 1
        } else if c == '%' {
            2
        } else {
            0
        };
    }
    out
}

/// Every form `s` can take in a JSON body, a form body or a URL.
fn forms(s: &str) -> Vec<String> {
    let json = serde_json::to_string(s).unwrap();
    let json = json[1..json.len() - 1].to_owned();
    let form: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
    let percent = form.replace('+', "%20");
    let mut all = vec![s.to_owned(), json.clone(), json.replace('/', "\\/")];
    for upper in [false, true] {
        let ascii = json_ascii(s, upper);
        all.push(ascii.replace('/', "\\/"));
        all.push(ascii);
    }
    all.push(lower_hex(&percent));
    all.push(lower_hex(&form));
    all.push(percent);
    all.push(form);
    all
}

/// The forms of `needles` found in `text`.
fn leaks(text: &str, needles: &[String]) -> Vec<String> {
    needles
        .iter()
        .flat_map(|n| forms(n))
        .filter(|f| text.contains(f.as_str()))
        .collect()
}

/// Every text and binary value in every table of the test's database, as `table.column: value`
/// lines, except the product's own configoption2 (where the secret belongs).
async fn every_table(env: &Env) -> String {
    let columns = sqlx::query(
        "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS
         WHERE TABLE_SCHEMA = DATABASE() AND DATA_TYPE IN ('char', 'varchar', 'tinytext',
           'text', 'mediumtext', 'longtext', 'binary', 'varbinary', 'tinyblob', 'blob',
           'mediumblob', 'longblob', 'enum', 'set', 'json')
         ORDER BY TABLE_NAME, ORDINAL_POSITION",
    )
    .fetch_all(&env.db)
    .await
    .unwrap();
    assert!(
        columns.len() > 50,
        "information_schema lists the WHMCS tables"
    );
    let mut text = String::new();
    for row in columns {
        let table: String = row.get(0);
        let column: String = row.get(1);
        // Where the client secret and the Licensing API token belong.
        if table == "tblproducts" && ["configoption2", "configoption10"].contains(&column.as_str())
        {
            continue;
        }
        let sql = format!("SELECT CONVERT(`{column}` USING utf8mb4) FROM `{table}`");
        let values: Vec<Option<String>> = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_all(&env.db)
            .await
            .unwrap();
        for v in values.into_iter().flatten() {
            text.push_str(&format!("{table}.{column}: {v}\n"));
        }
    }
    text
}

#[test]
fn the_leak_check_sees_every_encoding() {
    let forms = forms(SECRET);
    for expected in [
        r#"s3cr3t/\"\\+%#& é€"#,
        r#"s3cr3t\/\"\\+%#& \u00e9\u20ac"#,
        r#"s3cr3t/\"\\+%#& \u00E9\u20AC"#,
        "s3cr3t%2F%22%5C%2B%25%23%26+%C3%A9%E2%82%AC",
        "s3cr3t%2F%22%5C%2B%25%23%26%20%C3%A9%E2%82%AC",
        "s3cr3t%2f%22%5c%2b%25%23%26%20%c3%a9%e2%82%ac",
    ] {
        assert!(
            forms.iter().any(|f| f.starts_with(expected)),
            "{expected}: {forms:?}"
        );
    }
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
    let wrong = format!("{SECRET}-wrong");
    let bad = env.product_with("", "partner-1", &wrong, &fields).await;
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
    cmd.args(["run", "--once"]).env("RUST_LOG", "trace");
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

    assert_eq!(env.job(ok).await.state, JobState::Done);
    assert_eq!(env.job(revoked).await.state, JobState::Done);
    assert_eq!(env.job(refused).await.state, JobState::Failed);
    assert_eq!(env.job(badcreds).await.state, JobState::Failed);
    let modulelog: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tblmodulelog")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert!(
        modulelog >= 5,
        "module log written in debug mode ({modulelog} rows)"
    );
    let tokens = env.sandbox.state().issued_tokens();
    assert!(tokens.len() >= 2, "a token was refreshed: {tokens:?}");
    assert!(tokens.iter().all(|t| t.contains(HOSTILE_TOKEN_PART)));
    let tables = every_table(&env).await;
    assert!(
        tables.contains("Bearer ****"),
        "tokens are masked, not dropped"
    );
    let needles = [SECRET.to_owned(), wrong]
        .into_iter()
        .chain(tokens)
        .collect::<Vec<_>>();
    for (what, text) in [("a table", &tables), ("the process log", &log)] {
        let found = leaks(text, &needles);
        assert!(found.is_empty(), "{what} holds {found:?}:\n{text}");
        assert!(
            !text.contains("sbx_"),
            "{what} holds a bearer token:\n{text}"
        );
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
    assert_eq!(env.job(sid).await.state, JobState::Done);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tblmodulelog")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

/// The Licensing API tokens (both hostile: every character an encoding changes) never reach a
/// table (beyond the product's own setting) or the process log: issued, lost and looked up,
/// refused with the token quoted back JSON-escaped, left unknown; Module Debug Mode on.
#[sqlx::test]
async fn licence_tokens_never_reach_tables_or_the_process_log(pool: MySqlPool) {
    use jetpack_sandbox::{LISTING_TOKEN, PLAIN_TOKEN};
    let env = Env::new(pool).await;
    env.exec("INSERT INTO tblconfiguration (setting, value) VALUES ('ModuleDebugMode', 'on')")
        .await;
    let lister =
        crate::licences::licence_product(&env, LISTING_TOKEN, "jetpack-backup-daily", "on").await;
    let plain = crate::licences::licence_product(&env, PLAIN_TOKEN, "jetpack-scan", "").await;
    let quoted =
        crate::licences::licence_product(&env, LISTING_TOKEN, "jetpack-anti-spam", "").await;
    let ok = env
        .service(lister, "Pending", "lic-ok.example", "", "")
        .await;
    let unknown = env
        .service(plain, "Pending", "lic-unknown.example", "", "")
        .await;
    let refused = env
        .service(quoted, "Pending", "lic-refused.example", "", "")
        .await;
    let state = env.sandbox.state();
    state.script("licence:jetpack-scan", vec![ScriptedReply::ActThenReset]);
    let echo = serde_json::json!({"code": "bad_token", "message": format!("token {LISTING_TOKEN} is odd")});
    state.script(
        "licence:jetpack-anti-spam",
        vec![ScriptedReply::Status {
            code: 400,
            body: echo.to_string(),
            retry_after: None,
        }],
    );
    for sid in [ok, unknown, refused] {
        env.store
            .enqueue(sid, Action::Provision, RequestedBy::Module)
            .await
            .unwrap();
    }
    let mut log = String::new();
    for _ in 0..2 {
        let mut cmd = worker_command(&database_url(&env.db).await, &env.sandbox.base_url());
        cmd.args(["run", "--once"])
            .env("RUST_LOG", "trace")
            .env("JETPACK_LOST_ANSWER_SETTLE", "0s");
        let out = output(cmd).await;
        log.push_str(&String::from_utf8_lossy(&out.stdout));
        log.push_str(&String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{log}");
        env.make_due().await;
    }
    assert_eq!(env.job(ok).await.state, JobState::Done);
    assert_eq!(env.job(unknown).await.state, JobState::Failed);
    let error = env.job(refused).await.last_error.unwrap();
    assert!(
        error.contains("bad_token: token ") && error.contains("is odd"),
        "{error}"
    );
    let tables = every_table(&env).await;
    assert!(
        tables.contains("licence_issue"),
        "the module log has the licence calls"
    );
    assert!(
        tables.contains("Bearer ****"),
        "tokens are masked, not dropped"
    );
    let needles = [LISTING_TOKEN.to_owned(), PLAIN_TOKEN.to_owned()];
    for (what, text) in [("a table", &tables), ("the process log", &log)] {
        let found = leaks(text, &needles);
        assert!(found.is_empty(), "{what} holds {found:?}:\n{text}");
        assert!(
            !text.contains("sbxlic_"),
            "{what} holds a licence token:\n{text}"
        );
    }
}
