//! WHMCS conventions: `key|Friendly Name` fields, values cut at `|`, duplicate value rows,
//! details written for this service only (inserted when missing), WHMCS 7.8.3 tables, and
//! 4-byte characters headed for utf8mb3 columns.

use jetpack_sandbox::{SandboxConfig, ScriptedReply};
use jetpack_worker::domain::JobState;
use jetpack_worker::domain::{Action, RequestedBy};
use sqlx::AssertSqlSafe;
use sqlx::mysql::MySqlPool;

use crate::helpers::{Env, Layout};

#[sqlx::test]
async fn friendly_names_and_values_cut_at_the_pipe(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env
        .product_with(
            "",
            "demo-client",
            "demo-secret",
            &[
                "Site URL|Your WordPress address",
                "Local User|WordPress user",
                "Plan|Jetpack plan",
                "jetpack_provisioning_details|Details",
            ],
        )
        .await;
    let sid = env
        .service(
            pid,
            "Active",
            "pipe.example|comment",
            "admin|x",
            "PROFESSIONAL|Pro",
        )
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert_eq!(
        env.sandbox.state().plan("pipe.example").unwrap().slug,
        "professional"
    );
}

#[sqlx::test]
async fn details_go_to_this_service_only_and_the_lowest_duplicate_row(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let mine = env
        .service(pid, "Active", "mine.example", "admin", "premium")
        .await;
    let other = env
        .service(pid, "Active", "other.example", "admin", "premium")
        .await;
    let field: i32 = sqlx::query_scalar(
        "SELECT id FROM tblcustomfields WHERE fieldname LIKE 'jetpack_provisioning_details%'",
    )
    .fetch_one(&env.db)
    .await
    .unwrap();
    env.exec(&format!(
        "INSERT INTO tblcustomfieldsvalues (fieldid, relid, value) VALUES
           ({field}, {mine}, 'first'), ({field}, {mine}, 'duplicate'), ({field}, {other}, 'keep me')"
    ))
    .await;
    env.store
        .enqueue(mine, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();

    let values: Vec<(i32, String)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT relid, value FROM tblcustomfieldsvalues WHERE fieldid = {field} ORDER BY id"
    )))
    .fetch_all(&env.db)
    .await
    .unwrap();
    assert_eq!(values.len(), 3);
    assert_eq!(values[0].0 as u32, mine.0);
    assert!(values[0].1.starts_with("URL to Activate Jetpack: "));
    assert_eq!(values[1], (mine.0 as i32, "duplicate".to_owned()));
    assert_eq!(values[2], (other.0 as i32, "keep me".to_owned()));
}

#[sqlx::test]
async fn a_missing_details_value_row_is_inserted_for_this_service(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "fresh.example", "admin", "premium")
        .await;
    assert_eq!(env.details(sid).await, None);
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    assert!(
        env.details(sid)
            .await
            .unwrap()
            .starts_with("URL to Activate Jetpack: ")
    );
}

#[sqlx::test]
async fn whmcs_783_tables_work_without_the_8x_columns(pool: MySqlPool) {
    let env = Env::with(pool, Layout::V783, SandboxConfig::default()).await;
    assert!(!env.store.activity_has_user_columns());
    // 7.8.3 allows duplicate settings: the newest row wins.
    env.exec("INSERT INTO tblconfiguration (setting, value) VALUES ('ModuleDebugMode', ''), ('ModuleDebugMode', 'on')").await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Pending", "old.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert_eq!(env.status(sid).await, "Active");
    assert_eq!(env.activity(sid).await.len(), 1);
    let logged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tblmodulelog")
        .fetch_one(&env.db)
        .await
        .unwrap();
    assert!(
        logged >= 2,
        "token and provision exchanges logged in debug mode, got {logged}"
    );
}

#[sqlx::test]
async fn zero_dates_in_whmcs_rows_are_never_a_problem(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "zero.example", "admin", "premium")
        .await;
    env.exec(&format!(
        "UPDATE tblhosting SET nextduedate = '0000-00-00', lastupdate = '0000-00-00 00:00:00',
           overidesuspenduntil = '0000-00-00' WHERE id = {sid}"
    ))
    .await;
    env.store
        .enqueue(sid, Action::Terminate, RequestedBy::Module)
        .await
        .unwrap();
    env.worker().run_once().await.unwrap();
    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert_eq!(env.status(sid).await, "Terminated");
}

#[sqlx::test]
async fn four_byte_characters_are_stored_safely_in_utf8mb3_columns(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = env.product("").await;
    let sid = env
        .service(pid, "Active", "emoji.example", "admin", "premium")
        .await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    env.sandbox.state().script(
        "emoji.example",
        vec![ScriptedReply::Status {
            code: 400,
            body: r#"{"error":"bad_site","message":"Site 🚀 is broken"}"#.into(),
            retry_after: None,
        }],
    );
    env.worker().run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Failed);
    assert!(
        job.last_error
            .as_deref()
            .unwrap()
            .contains("Site 🚀 is broken"),
        "the worker's own table keeps utf8mb4"
    );
    let details = env.details(sid).await.unwrap();
    assert!(details.contains("Site \u{FFFD} is broken"), "{details}");
    assert!(env.activity(sid).await[0].contains('\u{FFFD}'));
}
