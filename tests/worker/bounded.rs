//! Partner-API answers are bounded: an answer over the cap (256 KiB) is a transient error with
//! a short, clear message (an acting call's outcome is then checked with the status endpoint),
//! and what a job row or the module log keeps of any body is a short excerpt.

use jetpack_sandbox::ScriptedReply;
use jetpack_worker::domain::JobState;
use jetpack_worker::domain::{Action, RequestedBy, ServiceId};
use sqlx::mysql::MySqlPool;

use crate::helpers::Env;

/// A proxy's HTML error page of about `kib` KiB.
fn html_page(kib: usize) -> String {
    let line = "<p>The upstream server did not answer in time. Please try again later.</p>\n";
    let mut page =
        String::from("<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body>\n");
    while page.len() < kib * 1024 {
        page.push_str(line);
    }
    page + "</body></html>\n"
}

fn raw(code: u16, content_type: &str, body: String) -> ScriptedReply {
    ScriptedReply::Raw {
        code,
        content_type: content_type.to_owned(),
        body,
    }
}

async fn debug_env(pool: MySqlPool, site: &str) -> (Env, ServiceId) {
    let env = Env::new(pool).await;
    env.exec("INSERT INTO tblconfiguration (setting, value) VALUES ('ModuleDebugMode', 'on')")
        .await;
    let pid = env.product("").await;
    let sid = env.service(pid, "Active", site, "admin", "premium").await;
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    (env, sid)
}

/// The job's last error, checked to be short and to name the cap and `status`.
async fn short_cap_error(env: &Env, sid: ServiceId, status: &str) -> String {
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Queued, "{job:?}");
    let error = job.last_error.unwrap_or_default();
    assert!(error.len() < 600, "{} bytes: {error}", error.len());
    assert!(
        error.contains("partner API answer larger than 256 KiB") && error.contains(status),
        "{error}"
    );
    error
}

/// The longest request and response kept in the module log (bytes).
async fn longest_module_log(env: &Env) -> (i64, i64) {
    sqlx::query_as("SELECT MAX(LENGTH(request)), MAX(LENGTH(response)) FROM tblmodulelog")
        .fetch_one(&env.db)
        .await
        .unwrap()
}

#[sqlx::test]
async fn an_answer_over_the_cap_is_transient_and_the_provision_is_checked_first(pool: MySqlPool) {
    let (env, sid) = debug_env(pool, "big.example").await;
    let state = env.sandbox.state();
    let padding = "x".repeat(300 * 1024);
    let success =
        format!(r#"{{"success":true,"next_url":"https://x.example/","pad":"{padding}"}}"#);
    state.script(
        "big.example",
        vec![
            raw(200, "application/json", success),
            raw(502, "text/html", html_page(300)),
        ],
    );
    let worker = env.worker();

    worker.run_once().await.unwrap();
    short_cap_error(&env, sid, "HTTP 200").await;

    env.make_due().await;
    worker.run_once().await.unwrap();
    let error = short_cap_error(&env, sid, "HTTP 502").await;
    assert!(
        error.contains("<!DOCTYPE html> <html><head><title>502 Bad Gateway"),
        "{error}"
    );
    let calls = state.calls("big.example");
    assert_eq!(
        (calls.provision, calls.status),
        (1, 1),
        "status asked first: {calls:?}"
    );

    env.make_due().await;
    worker.run_once().await.unwrap();
    assert_eq!(env.job(sid).await.state, JobState::Done);
    let calls = state.calls("big.example");
    assert_eq!((calls.provision, calls.status), (2, 2), "{calls:?}");
    let (request, response) = longest_module_log(&env).await;
    assert!(
        request <= 8 * 1024 && response <= 8 * 1024,
        "{request} / {response}"
    );
}

#[sqlx::test]
async fn a_big_error_page_under_the_cap_leaves_a_short_error_and_a_bounded_module_log(
    pool: MySqlPool,
) {
    let (env, sid) = debug_env(pool, "proxy.example").await;
    let state = env.sandbox.state();
    state.script("proxy.example", vec![raw(502, "text/html", html_page(200))]);
    env.worker().run_once().await.unwrap();
    let job = env.job(sid).await;
    assert_eq!(job.state, JobState::Queued, "{job:?}");
    let error = job.last_error.unwrap_or_default();
    assert!(error.len() < 600 && error.contains("HTTP 502"), "{error}");
    let (_, response) = longest_module_log(&env).await;
    assert!(
        response <= 8 * 1024,
        "module log keeps {response} bytes of the page"
    );
    assert!(
        response >= 4 * 1024,
        "but keeps an excerpt ({response} bytes)"
    );
}
