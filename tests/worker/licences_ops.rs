//! Licences from the admin's shell: `jetpack-worker licence record|reissue|list` (the way out
//! of a lost issue answer) and the doctor's checks of licence products (`check [--online]`).

use jetpack_sandbox::{LISTING_TOKEN, PLAIN_TOKEN, ScriptedReply};
use jetpack_worker::domain::{Action, JobState, RequestedBy};
use sqlx::mysql::MySqlPool;

use crate::cli::{database_url, output, worker_command};
use crate::helpers::Env;
use crate::licences::{licence_product, worker};

async fn cli(env: &Env, args: &[&str]) -> (bool, String) {
    let mut cmd = worker_command(&database_url(&env.db).await, &env.sandbox.base_url());
    cmd.args(args);
    let out = output(cmd).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[sqlx::test]
async fn the_cli_records_a_lost_licence_and_lists_the_rows(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let pid = licence_product(&env, PLAIN_TOKEN, "jetpack-scan", "").await;
    let sid = env.service(pid, "Pending", "cli.example.org", "", "").await;
    let state = env.sandbox.state();
    state.script("licence:jetpack-scan", vec![ScriptedReply::ActThenReset]);
    env.store
        .enqueue(sid, Action::Provision, RequestedBy::Module)
        .await
        .unwrap();
    worker(&env).run_once().await.unwrap();
    env.make_due().await;
    worker(&env).run_once().await.unwrap();
    assert_eq!(env.job(sid).await.state, JobState::Failed);
    let service = sid.to_string();
    let (ok, out) = cli(&env, &["licence", "list", "--service", &service]).await;
    assert!(ok && out.contains("jetpack-scan unknown key -"), "{out}");

    let key = state.licences()[0].key.clone();
    let (ok, out) = cli(
        &env,
        &["licence", "record", "--service", &service, "--key", &key],
    )
    .await;
    assert!(ok, "{out}");
    assert!(
        out.contains("licence_record: failed job #1 queued again"),
        "{out}"
    );
    worker(&env).run_once().await.unwrap();
    assert_eq!(env.job(sid).await.state, JobState::Done);
    assert_eq!(
        env.details(sid).await.unwrap(),
        format!("Jetpack licence key: {key}")
    );
    let (_, out) = cli(&env, &["licence", "list", "--service", &service]).await;
    assert!(
        out.contains(&format!("jetpack-scan issued key {key}")),
        "{out}"
    );
    let (_, out) = cli(&env, &["licence", "reissue", "--service", &service]).await;
    assert!(out.contains("nothing to decide"), "{out}");
    let (ok, out) = cli(
        &env,
        &["licence", "record", "--service", "999", "--key", "k"],
    )
    .await;
    assert!(!ok && out.contains("service 999 does not exist"), "{out}");
    assert_eq!(state.licences().len(), 1);
}

#[sqlx::test]
async fn the_doctor_checks_licence_products_and_their_tokens(pool: MySqlPool) {
    let env = Env::new(pool).await;
    let good = licence_product(&env, LISTING_TOKEN, "jetpack-backup-daily", "").await;
    let (code, out) = crate::doctor::check(&env, &["--online"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!(
            "product #{good} 'Jetpack Premium': sells Jetpack licences"
        )),
        "{out}"
    );
    assert!(
        out.contains("licence product on sale to this partner"),
        "{out}"
    );

    let bad = licence_product(&env, "not-a-token", "jetpack-backup-daily", "").await;
    env.exec(&format!(
        "UPDATE tblproducts SET configoption7 = 'cancel' WHERE id = {bad}"
    ))
    .await;
    let (code, out) = crate::doctor::check(&env, &[]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("every suspend fails"), "{out}");
    let (code, out) = crate::doctor::check(&env, &["--online"]).await;
    assert_eq!(code, Some(1));
    assert!(
        out.contains("the Licensing API refused to list the product families"),
        "{out}"
    );
    assert!(
        !out.contains("not-a-token") && !out.contains("sbxlic"),
        "a token was printed:\n{out}"
    );

    let odd = licence_product(&env, LISTING_TOKEN, "jetpack-nothing", "").await;
    let (_, out) = crate::doctor::check(&env, &[]).await;
    assert!(
        out.contains(&format!(
            "product #{odd} 'Jetpack Premium': licence product 'jetpack-nothing'"
        )),
        "{out}"
    );
    assert!(out.contains("it is not a product on sale"), "{out}");
}
