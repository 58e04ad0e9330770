//! Bad and odd customer input, one table: every row is a service with its product, custom
//! fields and values as an admin or a customer could leave them. Input that cannot be valid
//! ends as a failed job with a clear `JETPACK MODULE: …` message in the details field, the
//! activity log and WHMCS's Module Queue, the service back to Pending, and no call to the
//! partner API. Input that is odd but valid (a port, a path, an IDN host, an oddly cased plan,
//! padded values) is provisioned, and the test checks what the sandbox received. The same
//! rows also go through the PHP module's `OrderChecks::check`, whose Site URL verdicts are its
//! `SiteUrl` parser's (`php_module_and_worker_agree_on_bad_input`): both sides read
//! `rules.json` and must refuse alike, accept alike, or be a `WORKER_ONLY` row.

use jetpack_sandbox::SandboxConfig;
use jetpack_worker::domain::JobState;
use jetpack_worker::domain::{Action, RequestedBy, ServiceId};
use jetpack_worker::store::Store;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::{AssertSqlSafe, Row};

use crate::helpers::{CLIENT_ID, Env, Layout, SECRET, key};

const FIELDS: [&str; 4] = [
    "Site URL|Your WordPress site",
    "Local User",
    "Plan",
    "jetpack_provisioning_details|Jetpack Provisioning Details",
];

#[derive(Clone, Debug)]
enum Expect {
    /// Failed at once, no API call; the message contains this.
    Fails(&'static str),
    /// Provisioned: the sandbox received this `siteurl`, `plan` and `local_user`.
    Provisions {
        site: &'static str,
        plan: &'static str,
        user: &'static str,
    },
}

/// One row: the product as the admin set it up and the values the customer entered.
#[derive(Clone, Debug)]
struct Case {
    name: &'static str,
    layout: Layout,
    /// None: the service's product no longer exists.
    module: Option<&'static str>,
    creds: (&'static str, &'static str),
    fields: Vec<&'static str>,
    /// (field key, value); a key left out has no value row at all.
    values: Vec<(&'static str, String)>,
    /// Whether the failure can be written to the details field (it exists, once).
    details_usable: bool,
    expect: Expect,
}

fn case(name: &'static str) -> Case {
    Case {
        name,
        layout: Layout::V8,
        module: Some("jetpack"),
        creds: (CLIENT_ID, SECRET),
        fields: FIELDS.to_vec(),
        values: vec![
            ("Site URL", format!("{}.example", name.replace(' ', "-"))),
            ("Local User", "admin".into()),
            ("Plan", "premium".into()),
        ],
        details_usable: true,
        expect: Expect::Fails("(no expectation set)"),
    }
}

impl Case {
    fn value(mut self, key: &'static str, value: impl Into<String>) -> Case {
        self.values.retain(|(k, _)| *k != key);
        self.values.push((key, value.into()));
        self
    }
    fn site(self, v: impl Into<String>) -> Case {
        self.value("Site URL", v)
    }
    fn user(self, v: impl Into<String>) -> Case {
        self.value("Local User", v)
    }
    fn plan(self, v: impl Into<String>) -> Case {
        self.value("Plan", v)
    }
    fn no_value(mut self, key: &'static str) -> Case {
        self.values.retain(|(k, _)| *k != key);
        self
    }
    fn fields(mut self, fields: &[&'static str]) -> Case {
        self.fields = fields.to_vec();
        self
    }
    fn creds(mut self, id: &'static str, secret: &'static str) -> Case {
        self.creds = (id, secret);
        self
    }
    fn module(mut self, module: Option<&'static str>) -> Case {
        self.module = module;
        self.details_usable = false;
        self
    }
    fn v783(mut self) -> Case {
        self.layout = Layout::V783;
        self
    }
    fn no_details(mut self) -> Case {
        self.details_usable = false;
        self
    }
    fn fails(mut self, says: &'static str) -> Case {
        self.expect = Expect::Fails(says);
        self
    }
    fn provisions(mut self, site: &'static str, plan: &'static str, user: &'static str) -> Case {
        self.expect = Expect::Provisions { site, plan, user };
        self
    }
}

fn corpus() -> Vec<Case> {
    let without = |name: &'static str| -> Vec<&'static str> {
        FIELDS
            .iter()
            .copied()
            .filter(|f| !f.starts_with(name))
            .collect()
    };
    let renamed = |from: &'static str, to: &'static str| -> Vec<&'static str> {
        FIELDS
            .iter()
            .map(|f| if f.starts_with(from) { to } else { *f })
            .collect()
    };
    let mut two_site_fields = FIELDS.to_vec();
    two_site_fields.push("Site URL");
    let mut two_details_fields = FIELDS.to_vec();
    two_details_fields.push("jetpack_provisioning_details");
    vec![
        // --- custom fields missing or misnamed
        case("no site field")
            .fields(&without("Site URL"))
            .fails("has no custom field named 'Site URL'"),
        case("site field lower case")
            .fields(&renamed("Site URL", "site url"))
            .fails("has no custom field named 'Site URL'"),
        case("site field without space")
            .fields(&renamed("Site URL", "SiteURL|Your site"))
            .fails("has no custom field named 'Site URL'"),
        case("no user field")
            .fields(&without("Local User"))
            .fails("has no custom field named 'Local User'"),
        case("no plan field")
            .fields(&without("Plan"))
            .fails("has no custom field named 'Plan'"),
        case("no details field")
            .fields(&without("jetpack_provisioning_details"))
            .no_details()
            .fails("has no custom field named 'jetpack_provisioning_details'"),
        case("two site fields")
            .fields(&two_site_fields)
            .fails("has 2 custom fields named 'Site URL'; delete all but one"),
        case("two details fields")
            .fields(&two_details_fields)
            .no_details()
            .fails("has 2 custom fields named 'jetpack_provisioning_details'"),
        // --- empty and whitespace values
        case("site empty")
            .site("")
            .fails("the Site URL '' is empty"),
        case("site blank").site("   ").fails("is empty"),
        case("site no value row")
            .no_value("Site URL")
            .fails("the Site URL '' is empty"),
        case("site only a comment")
            .site("|my blog")
            .fails("the Site URL '' is empty"),
        case("user empty").user("").fails("the Local User is empty"),
        case("user blank")
            .user(" \t ")
            .fails("the Local User is empty"),
        case("user no value row")
            .no_value("Local User")
            .fails("the Local User is empty"),
        case("plan empty")
            .plan("")
            .fails("'' is not an allowed plan; use one of: free, personal"),
        // --- URLs that cannot be a WordPress site
        case("javascript")
            .site("javascript:alert(document.cookie)")
            .fails("only http:// and https:// are allowed"),
        case("ftp scheme")
            .site("ftp://files.example")
            .fails("only http:// and https:// are allowed"),
        case("mailto")
            .site("mailto:admin@example.com")
            .fails("only http:// and https:// are allowed"),
        case("data url")
            .site("data:text/html,<script>alert(1)</script>")
            .fails("only http:// and https:// are allowed"),
        case("query string")
            .site("https://query.example/?p=1")
            .fails("contains ? or #"),
        case("fragment")
            .site("fragment.example/#top")
            .fails("contains ? or #"),
        case("credentials in url")
            .site("https://user:pw@creds.example/")
            .fails("contains a user name"),
        case("no dot").site("localhost").fails("has no domain name"),
        case("inner space")
            .site("my site.example")
            .fails("contains spaces"),
        case("sql in site")
            .site("x.example'; DROP TABLE tblhosting; --")
            .fails("contains spaces"),
        case("html in site")
            .site("<script>alert(1)</script>")
            .fails("is not a web address"),
        case("over-long site")
            .site(format!("{}.example", "a".repeat(2000)))
            .fails("longer than"),
        case("bad punycode")
            .site("xn--.example")
            .fails("invalid international domain name"),
        case("empty label")
            .site("a..example")
            .fails("is not a valid domain name"),
        case("label with dashes")
            .site("-dash-.example")
            .fails("is not a valid domain name"),
        case("port out of range")
            .site("ports.example:99999")
            .fails("invalid port number"),
        case("port zero").site("zero.example:0").fails("has port 0"),
        // --- other values that cannot be valid
        case("over-long user")
            .user("u".repeat(300))
            .fails("the Local User is longer than 200 characters"),
        case("unknown plan")
            .plan("Gold")
            .fails("'Gold' is not an allowed plan"),
        case("plan with words")
            .plan("premium plan")
            .fails("'premium plan' is not an allowed plan"),
        case("sql in plan")
            .plan("premium'; DELETE FROM tblhosting; --")
            .fails("is not an allowed plan"),
        case("html in plan")
            .plan("<b>premium</b>")
            .fails("''b'premium'/b'' is not an allowed plan"),
        case("over-long plan")
            .plan("p".repeat(5000))
            .fails("…' is not an allowed plan"),
        // --- the product
        case("no client id")
            .creds("", SECRET)
            .fails("credentials for provisioning are not complete"),
        case("blank secret")
            .creds(CLIENT_ID, "   ")
            .fails("credentials for provisioning are not complete"),
        case("product deleted")
            .module(None)
            .fails("no longer exists; assign the service to a Jetpack product"),
        case("other module")
            .module(Some("cpanel"))
            .fails("does not use the jetpack module (its module is 'cpanel')"),
        // --- WHMCS 7.8.3 tables
        case("old whmcs plan field")
            .v783()
            .fields(&without("Plan"))
            .fails("has no custom field named 'Plan'"),
        case("old whmcs blank secret")
            .v783()
            .creds(CLIENT_ID, "")
            .fails("credentials for provisioning are not complete"),
        // --- odd but valid: provisioned, with what the sandbox must have received
        case("port and path")
            .site("HTTPS://Port.Example:8443/blog/")
            .provisions("port.example:8443/blog", "premium", "admin"),
        case("trailing slash path")
            .site("http://path.example/wp/")
            .provisions("path.example/wp", "premium", "admin"),
        case("idn host").site("https://bücher.example/").provisions(
            "xn--bcher-kva.example",
            "premium",
            "admin",
        ),
        case("punycode host")
            .site("xn--caf-dma.example")
            .provisions("xn--caf-dma.example", "premium", "admin"),
        case("upper case host")
            .site("WWW.Upper.EXAMPLE")
            .provisions("www.upper.example", "premium", "admin"),
        case("public ip")
            .site("http://203.0.113.9:8080/wp")
            .provisions("203.0.113.9:8080/wp", "premium", "admin"),
        case("padded values")
            .site("  padded.example  ")
            .user("  editor ")
            .plan(" personal ")
            .provisions("padded.example", "personal", "editor"),
        case("pipe comments")
            .site("pipe.example|my shop")
            .plan("Professional|Pro plan")
            .provisions("pipe.example", "professional", "admin"),
        case("odd case plan")
            .site("oddcase.example")
            .plan("PrEmIuM")
            .provisions("oddcase.example", "premium", "admin"),
        case("standalone product")
            .site("scan.example")
            .plan("JETPACK-SCAN")
            .provisions("scan.example", "jetpack-scan", "admin"),
        case("sql in user")
            .site("sqluser.example")
            .user("o'brien\"; DROP TABLE tblhosting; --")
            .provisions(
                "sqluser.example",
                "premium",
                "o'brien\"; DROP TABLE tblhosting; --",
            ),
        case("padded credentials")
            .site("padcreds.example")
            .creds(" demo-client ", " demo-secret\t")
            .provisions("padcreds.example", "premium", "admin"),
        case("padded field name")
            .site("padname.example")
            .fields(&renamed("Site URL", " Site URL |Your site"))
            .provisions("padname.example", "premium", "admin"),
        case("old whmcs valid")
            .v783()
            .site("old.example")
            .provisions("old.example", "premium", "admin"),
    ]
}

/// Seeds one row: product (unless deleted), fields, an Active service, its values, and a
/// provision job as the module would queue it.
async fn seed(env: &Env, c: &Case) -> ServiceId {
    seed_for(env, c, Action::Provision).await
}

/// [`seed`], with a request for `action`.
async fn seed_for(env: &Env, c: &Case, action: Action) -> ServiceId {
    let mut conn = env.db.acquire().await.unwrap();
    sqlx::query("SET SESSION sql_mode = ''")
        .execute(&mut *conn)
        .await
        .unwrap();
    let pid = match c.module {
        Some(module) => {
            let pid = sqlx::query(
                "INSERT INTO tblproducts (type, name, autosetup, servertype, configoption1, configoption2)
                 VALUES ('other', ?, 'payment', ?, ?, ?)",
            )
            .bind(format!("Jetpack ({})", c.name))
            .bind(module)
            .bind(c.creds.0)
            .bind(c.creds.1)
            .execute(&mut *conn)
            .await
            .unwrap()
            .last_insert_id();
            for name in &c.fields {
                sqlx::query(
                    "INSERT INTO tblcustomfields (type, relid, fieldname, fieldtype, adminonly)
                     VALUES ('product', ?, ?, 'text', '')",
                )
                .bind(pid)
                .bind(name)
                .execute(&mut *conn)
                .await
                .unwrap();
            }
            pid
        }
        None => 999_999,
    };
    let sid = sqlx::query(
        "INSERT INTO tblhosting (userid, orderid, packageid, regdate, domainstatus)
         VALUES (5, 0, ?, CURDATE(), 'Active')",
    )
    .bind(pid)
    .execute(&mut *conn)
    .await
    .unwrap()
    .last_insert_id() as u32;
    // Each value goes to every field whose key matches, ignoring case (as the misnamed and
    // duplicated fields would have been filled in the order form).
    let fields: Vec<(i32, String)> = sqlx::query_as(
        "SELECT id, fieldname FROM tblcustomfields WHERE type = 'product' AND relid = ?",
    )
    .bind(pid)
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    for (key, value) in &c.values {
        for (fid, name) in &fields {
            let fkey = name.split('|').next().unwrap_or("").trim();
            if fkey
                .replace(' ', "")
                .eq_ignore_ascii_case(&key.replace(' ', ""))
            {
                sqlx::query(
                    "INSERT INTO tblcustomfieldsvalues (fieldid, relid, value) VALUES (?, ?, ?)",
                )
                .bind(fid)
                .bind(sid)
                .bind(value)
                .execute(&mut *conn)
                .await
                .unwrap();
            }
        }
    }
    let sid = ServiceId(sid);
    env.store
        .enqueue(sid, action, RequestedBy::Module)
        .await
        .unwrap();
    sid
}

/// A second database with the WHMCS 7.8.3 tables and the worker's migrations, next to the
/// test's own. Dropped at the end (and before, in case an earlier run failed midway).
pub(crate) async fn second_database(pool: &MySqlPool) -> (String, MySqlPool) {
    let db: String = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(pool)
        .await
        .unwrap();
    let name = format!("jp783_{}", &db[db.len().saturating_sub(24)..]);
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}`"
    )))
    .execute(pool)
    .await
    .unwrap();
    let options = (*pool.connect_options()).clone().database(&name);
    let other = MySqlPoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await
        .unwrap();
    Store::migrate(&other).await.unwrap();
    (name, other)
}

/// What WHMCS shows for one row after the run.
async fn check(env: &Env, c: &Case, sid: ServiceId, logged_requests: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            problems.push(format!("[{}] {what}", c.name));
        }
    };
    let job = env.job(sid).await;
    let details = env.details(sid).await;
    let status = env.status(sid).await;
    let activity = env.activity(sid).await;
    let queue: Vec<(u32, String, String, u16, i8)> = env
        .module_queue()
        .await
        .into_iter()
        .filter(|q| q.0 == sid.0)
        .collect();
    match &c.expect {
        Expect::Fails(says) => {
            let msg = job.last_error.clone().unwrap_or_default();
            expect(job.state == JobState::Failed, format!("job {}", job.state));
            expect(job.attempts == 1, format!("{} attempts", job.attempts));
            let prefix = format!("JETPACK MODULE: Service ID: {sid} - ");
            expect(msg.starts_with(&prefix), format!("message {msg:?}"));
            expect(
                msg.contains(says),
                format!("message {msg:?} lacks {says:?}"),
            );
            expect(
                !msg.contains('<') && !msg.contains('>') && !msg.contains('\n'),
                format!("message carries markup or newlines: {msg:?}"),
            );
            expect(
                msg.chars().count() <= 400,
                format!("message too long: {msg:?}"),
            );
            if c.details_usable {
                expect(
                    details.as_deref() == Some(msg.as_str()),
                    format!("details {details:?}"),
                );
            } else {
                expect(details.is_none(), format!("details {details:?}"));
            }
            expect(activity == [msg.clone()], format!("activity {activity:?}"));
            expect(status == "Pending", format!("status {status}"));
            expect(
                queue.len() == 1 && queue[0].1 == "CreateAccount" && queue[0].2 == msg,
                format!("module queue {queue:?}"),
            );
        }
        Expect::Provisions { site, plan, user } => {
            expect(
                job.state == JobState::Done,
                format!("job {} {:?}", job.state, job.last_error),
            );
            expect(
                details
                    .as_deref()
                    .is_some_and(|d| d.starts_with("URL to Activate Jetpack: ")),
                format!("details {details:?}"),
            );
            expect(status == "Active", format!("status {status}"));
            expect(activity.len() == 1, format!("activity {activity:?}"));
            let state = env.sandbox.state();
            let calls = state.calls(site);
            expect(
                (calls.provision, calls.provision_ok) == (1, 1),
                format!("sandbox calls for {site}: {calls:?}"),
            );
            let recorded = state.plan(site).map(|p| p.slug);
            expect(
                recorded.as_deref() == Some(*plan),
                format!("sandbox plan for {site}: {recorded:?}"),
            );
            let form = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([
                    ("plan", *plan),
                    ("siteurl", *site),
                    ("local_user", *user),
                    ("force_register", "1"),
                ])
                .finish();
            expect(
                logged_requests.iter().any(|r| r.ends_with(&form)),
                format!("no provision request with {form:?} in the module log"),
            );
        }
    }
    problems
}

/// Every row of `corpus()`, each as its own service, drained by one `run_once` per WHMCS
/// layout; then each row's outcome, and no API call beyond the valid rows' provisions.
#[sqlx::test]
async fn bad_and_odd_input_corpus(pool: MySqlPool) {
    let cases = corpus();
    assert!(cases.len() >= 30, "{} rows", cases.len());
    let failing = cases
        .iter()
        .filter(|c| matches!(c.expect, Expect::Fails(_)))
        .count();
    let (other_db, other_pool) = second_database(&pool).await;
    let mut problems = Vec::new();
    for layout in [Layout::V8, Layout::V783] {
        let rows: Vec<&Case> = cases.iter().filter(|c| c.layout == layout).collect();
        let db = if layout == Layout::V8 {
            pool.clone()
        } else {
            other_pool.clone()
        };
        let env = Env::with(db, layout, SandboxConfig::default()).await;
        env.exec("INSERT INTO tblconfiguration (setting, value) VALUES ('ModuleDebugMode', 'on')")
            .await;
        let mut seeded = Vec::new();
        for c in &rows {
            seeded.push((*c, seed(&env, c).await));
        }

        let summary = env.worker().run_once().await.expect("no worker error");
        assert_eq!(summary.processed, rows.len() as u64, "{summary:?}");
        assert_eq!((summary.unrecorded, summary.lost_leases), (0, 0));

        let logged: Vec<String> = sqlx::query(
            "SELECT request FROM tblmodulelog WHERE action = 'createaccount provision'",
        )
        .fetch_all(&env.db)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>("request"))
        .collect();
        for (c, sid) in &seeded {
            problems.extend(check(&env, c, *sid, &logged).await);
        }
        // No API call for input that cannot be valid: the sandbox saw exactly the valid rows'
        // provisions, and one token for the one partner account they share.
        let valid: Vec<String> = rows
            .iter()
            .filter_map(|c| match c.expect {
                Expect::Provisions { site, .. } => Some(key(site)),
                Expect::Fails(_) => None,
            })
            .collect();
        let state = env.sandbox.state();
        let called: Vec<String> = state.all_calls().into_keys().collect();
        let mut expected = valid.clone();
        expected.sort();
        problems.extend(
            (called != expected)
                .then(|| format!("{layout:?}: API calls for {called:?}, expected {expected:?}")),
        );
        let tokens = state.token_calls();
        problems.extend(
            (tokens != u64::from(!valid.is_empty()))
                .then(|| format!("{layout:?}: {tokens} token calls")),
        );
        let hosting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tblhosting")
            .fetch_one(&env.db)
            .await
            .unwrap();
        assert_eq!(hosting, rows.len() as i64, "tblhosting intact");
        env.sandbox.shutdown().await;
    }
    other_pool.close().await;
    sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE `{other_db}`")))
        .execute(&pool)
        .await
        .unwrap();
    assert!(
        problems.is_empty(),
        "{} of {} rows ({failing} bad, {} valid) went wrong:\n{}",
        problems.len(),
        cases.len(),
        cases.len() - failing,
        problems.join("\n")
    );
}

/// The rows of `junk_hosts_and_users_fail_without_an_api_call`.
fn junk() -> Vec<Case> {
    vec![
        case("loopback").site("127.0.0.1"),
        case("loopback with port").site("http://127.0.0.1:8080/"),
        case("unspecified").site("0.0.0.0"),
        case("ipv6 loopback").site("[::1]"),
        // The API's paths write a site's '/' as '::', so an IPv6 literal cannot be named in
        // the status and cancel calls (the sandbox files "[2001:db8::7]" under "[2001:db8/7]").
        case("ipv6 literal").site("[2001:db8::7]"),
        case("private").site("10.1.2.3"),
        case("private 192").site("192.168.1.20/wp"),
        case("link local").site("169.254.169.254"),
        case("shorthand ipv4").site("1.2.3"),
        case("hex ipv4").site("0x7f.1"),
        case("decimal ipv4").site("2130706433"),
        case("wildcard").site("*.wild.example"),
        case("markup user")
            .site("markup.example")
            .user("<script>alert(1)</script>"),
    ]
    .into_iter()
    .map(|c| c.fails(""))
    .collect()
}

/// Hosts that parse as web addresses but cannot be a customer's WordPress site reachable by
/// WordPress.com: loopback, unspecified, private and link-local addresses, the WHATWG
/// shorthand IPv4 forms (`1.2.3`, `0x7f.1`, `2130706433`) that the URL parser silently
/// rewrites into a different address, IPv6 literals (the API's `::` path separator makes
/// them unaddressable in the status and cancel calls), a wildcard, and a WordPress user name
/// with markup
/// (WordPress strips tags from user names, so such a user cannot exist). Each should fail
/// at once without an API call.
#[sqlx::test]
async fn junk_hosts_and_users_fail_without_an_api_call(pool: MySqlPool) {
    let rows = junk();
    let env = Env::new(pool).await;
    let mut seeded = Vec::new();
    for c in &rows {
        seeded.push((c, seed(&env, c).await));
    }
    env.worker().run_once().await.unwrap();
    let mut problems = Vec::new();
    for (c, sid) in &seeded {
        problems.extend(check(&env, c, *sid, &[]).await);
    }
    let called = env.sandbox.state().all_calls();
    assert!(
        problems.is_empty() && called.is_empty(),
        "{}\nAPI calls: {:?}",
        problems.join("\n"),
        called.keys().collect::<Vec<_>>()
    );
}

/// More Site URL values for the contract test, at the edges of what the PHP module's `SiteUrl`
/// checks without a URL parser: refused by both for the same reason, accepted by both, or (listed in
/// `WORKER_ONLY`) left to the worker.
fn site_url_edges() -> Vec<Case> {
    let long_label = format!("{}.example", "l".repeat(64));
    vec![
        case("edge empty host").site("https://"),
        case("edge empty host after user").site("http://u@"),
        case("edge leading dot").site(".lead.example"),
        case("edge trailing dot").site("trail.example."),
        case("edge underscore").site("under_score.example"),
        case("edge long label").site(long_label),
        case("edge caret").site("x^y.example"),
        case("edge bracket").site("a[b].example"),
        case("edge port letters").site("letters.example:abc"),
        case("edge port too big").site("big.example:65536"),
        case("edge two ports").site("two.example:8080:90"),
        case("edge port zeros").site("zeros.example:00"),
        case("edge user and bad port").site("https://user:pw@both.example:99999/"),
        case("edge user and query").site("http://u@uq.example?q"),
        case("edge colons as user").site("::@colons.example"),
        // Accepted by both.
        case("edge extra slashes").site("https:///slashes.example"),
        case("edge empty user").site("http://@at.example"),
        case("edge empty port").site("colon.example:"),
        case("edge padded port").site("padport.example:0080"),
        case("edge backslash path").site("bs.example\\wp"),
        case("edge double dash").site("a--b.example"),
        case("edge letters after digits").site("digits.123abc"),
        case("edge percent dot").site("percent%2eexample"),
        case("edge ideographic dot").site("ünï\u{3002}example"),
        // Left to the worker.
        case("edge ends in a number").site("ends.1"),
        case("edge bad percent").site("bad%zzpercent.example"),
        case("edge bad punycode").site("xn--zz.example"),
    ]
}

/// Cases only the worker can decide, each with the reason: the PHP module lets them through
/// at Create (it has no URL parser), the worker refuses them. The corpus has none that hinge
/// on DNS or on the partner API's answers: those the worker decides at run time by nature.
const WORKER_ONLY: &[(&str, &str)] = &[
    ("bad punycode", "punycode needs an IDNA decoder"),
    ("edge bad punycode", "punycode needs an IDNA decoder"),
    (
        "edge bad percent",
        "the URL parser percent-decodes a host before judging it",
    ),
    (
        "edge ends in a number",
        "a host ending in a number is an IPv4 address to the URL parser",
    ),
    ("loopback", "IPv4 ranges need the URL parser's IPv4 reading"),
    (
        "loopback with port",
        "IPv4 ranges need the URL parser's IPv4 reading",
    ),
    (
        "unspecified",
        "IPv4 ranges need the URL parser's IPv4 reading",
    ),
    ("private", "IPv4 ranges need the URL parser's IPv4 reading"),
    (
        "private 192",
        "IPv4 ranges need the URL parser's IPv4 reading",
    ),
    (
        "link local",
        "IPv4 ranges need the URL parser's IPv4 reading",
    ),
    (
        "shorthand ipv4",
        "WHATWG IPv4 shorthand needs the URL parser",
    ),
    ("hex ipv4", "WHATWG IPv4 shorthand needs the URL parser"),
    ("decimal ipv4", "WHATWG IPv4 shorthand needs the URL parser"),
    ("ipv6 loopback", "IPv6 literals need the URL parser"),
    ("ipv6 literal", "IPv6 literals need the URL parser"),
];

/// What one side made of an order.
#[derive(Debug, PartialEq)]
enum Verdict {
    Accepts,
    Refuses(String),
}

/// The form refusals are compared in. The module HTML-escapes customer-supplied values
/// where the worker's `quote()` replaces `<`, `>`, `"` and backquotes with `'`: so the PHP
/// side's message is taken with its HTML entities decoded (`html_entity_decode`, done by the
/// helper script), and on both sides those four characters count as `'`.
fn normalised(message: &str) -> String {
    message
        .chars()
        .map(|c| match c {
            '<' | '>' | '"' | '`' => '\'',
            c => c,
        })
        .collect()
}

/// Runs the PHP module's `OrderChecks::check` on these services
/// (whmcs/tests/Support/load_orders.php) and returns its verdict on each, with (site, user,
/// plan) for the accepted ones.
fn php_verdicts(
    database: &str,
    sids: &[ServiceId],
    action: Action,
) -> Vec<(Verdict, Option<[String; 3]>)> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/whmcs/tests/Support/load_orders.php"
    );
    let output = std::process::Command::new("php")
        .env("JETPACK_ORDER_ACTION", action.as_str())
        .arg(script)
        .arg(database)
        .args(sids.iter().map(|s| s.to_string()))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run php ({e}): `source scripts/lib/mariadb.sh && ensure_php`")
        });
    assert!(
        output.status.success(),
        "php {script}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let all: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    sids.iter()
        .map(|sid| {
            let one = &all[sid.to_string()];
            let text = |k: &str| one[k].as_str().unwrap_or_default().to_owned();
            match one["accepted"].as_bool() {
                Some(true) => (
                    Verdict::Accepts,
                    Some([text("site"), text("user"), text("plan")]),
                ),
                Some(false) => (Verdict::Refuses(text("text")), None),
                None => panic!("no verdict for service {sid}: {one}"),
            }
        })
        .collect()
}

/// The contract between the two places that check orders: every row of `corpus()`,
/// `junk()` and `site_url_edges()`, seeded into a real WHMCS database (both layouts), goes
/// through the PHP module's `OrderChecks::check` (its Site URL verdicts are the `SiteUrl`
/// class's) and through the worker. Both must refuse with the same message (compared in
/// `normalised` form), or both accept (the module then reads the plan and user the worker
/// sent), or the row is in `WORKER_ONLY` and the module accepts what the worker refuses.
#[sqlx::test]
async fn php_module_and_worker_agree_on_bad_input(pool: MySqlPool) {
    let (_, accepted) = agree_on(&pool, Action::Provision).await;
    assert!(accepted > 0);
}

/// The same contract for a terminate, which needs only what the cancel call sends (the Site
/// URL and the credentials): both sides must agree again, and the rows refused only for
/// their Local User or Plan are accepted now (a legacy order can still be cancelled).
#[sqlx::test]
async fn php_module_and_worker_agree_on_a_terminate(pool: MySqlPool) {
    let (refused, accepted) = agree_on(&pool, Action::Terminate).await;
    let legacy = [
        "no user field",
        "no plan field",
        "user empty",
        "user blank",
        "user no value row",
        "plan empty",
        "over-long user",
        "unknown plan",
        "markup user",
    ];
    let still: Vec<&&str> = legacy
        .iter()
        .filter(|n| refused.iter().any(|r| r == *n))
        .collect();
    assert!(
        still.is_empty(),
        "a terminate is refused for what the cancel never sends: {still:?}"
    );
    assert!(accepted >= legacy.len(), "{accepted} accepted");
    assert!(
        !refused.is_empty(),
        "a bad Site URL still refuses a terminate"
    );
}

/// Runs the contract for `action`: the names of the rows both sides refused, and how many
/// both accepted.
async fn agree_on(pool: &MySqlPool, action: Action) -> (Vec<String>, usize) {
    let mut refused_rows = Vec::new();
    let cases: Vec<Case> = corpus()
        .into_iter()
        .chain(junk())
        .chain(site_url_edges())
        .collect();
    for (name, _) in WORKER_ONLY {
        assert!(
            cases.iter().any(|c| c.name == *name),
            "WORKER_ONLY names {name:?}, which is no row"
        );
    }
    let (other_db, other_pool) = second_database(pool).await;
    let mut problems = Vec::new();
    let (mut refused, mut accepted, mut worker_only) = (0, 0, 0);
    for layout in [Layout::V8, Layout::V783] {
        let rows: Vec<&Case> = cases.iter().filter(|c| c.layout == layout).collect();
        let db = if layout == Layout::V8 {
            pool.clone()
        } else {
            other_pool.clone()
        };
        let database: String = sqlx::query_scalar("SELECT DATABASE()")
            .fetch_one(&db)
            .await
            .unwrap();
        let env = Env::with(db, layout, SandboxConfig::default()).await;
        let mut sids = Vec::new();
        for c in &rows {
            sids.push(seed_for(&env, c, action).await);
        }
        // The module only reads; the worker then processes the same rows.
        let php = php_verdicts(&database, &sids, action);
        env.worker().run_once().await.expect("no worker error");
        for ((c, sid), (php, php_read)) in rows.iter().zip(&sids).zip(php) {
            let job = env.job(*sid).await;
            let worker = if job.state == JobState::Failed {
                Verdict::Refuses(job.last_error.clone().unwrap_or_default())
            } else {
                Verdict::Accepts
            };
            let only = WORKER_ONLY.iter().find(|(n, _)| *n == c.name);
            match (&php, &worker, only) {
                (Verdict::Accepts, Verdict::Refuses(_), Some(_)) => worker_only += 1,
                (_, _, Some((_, why))) => problems.push(format!(
                    "[{}] listed as worker-only ({why}), but the module {php:?}, the worker {worker:?}",
                    c.name
                )),
                (Verdict::Refuses(p), Verdict::Refuses(w), None)
                    if normalised(p) == normalised(w) =>
                {
                    refused += 1;
                    refused_rows.push(c.name.to_string());
                }
                (Verdict::Accepts, Verdict::Accepts, None) => {
                    accepted += 1;
                    if let (Expect::Provisions { plan, user, .. }, Some([_, u, p])) =
                        (&c.expect, &php_read)
                        && action == Action::Provision
                        && (p != plan || u != user)
                    {
                        problems.push(format!(
                            "[{}] the module read plan {p:?} and user {u:?}, the worker sent {plan:?} and {user:?}",
                            c.name
                        ));
                    }
                }
                _ => problems.push(format!(
                    "[{}] the module {php:?}\n    the worker {worker:?}",
                    c.name
                )),
            }
        }
        env.sandbox.shutdown().await;
    }
    other_pool.close().await;
    sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE `{other_db}`")))
        .execute(pool)
        .await
        .unwrap();
    eprintln!(
        "{} rows: {refused} refused alike, {accepted} accepted by both, {worker_only} worker-only",
        cases.len()
    );
    assert!(
        problems.is_empty(),
        "{} of {} rows disagree:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
    assert_eq!(worker_only, WORKER_ONLY.len());
    (refused_rows, accepted)
}
