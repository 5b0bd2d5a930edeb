//! The site in a real browser: headless Chromium driven through chromedriver (both from
//! Debian's packages: `chromium chromium-driver`), against a node on port 0 and a fresh
//! schema. Every step leaves a screenshot in target/screenshots/<test>-<step>.png.
//! Waits are bounded and poll the page; nothing asserts how long something took.
mod common;

use chrono::Duration;
use common::{spawn_app, spawn_app_with, TestApp};
use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

/// The longest any single wait in these tests may take.
const WAIT: StdDuration = StdDuration::from_secs(20);

fn binary(var: &str, default: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_string());
    assert!(
        Path::new(&path).exists(),
        "{path} is missing: the browser tests need Debian's `chromium` and `chromium-driver` packages \
         (scripts/test.sh installs them; or set {var})"
    );
    path
}

/// A chromedriver we started, in its own process group so that it and the browsers it
/// starts are ended together when the test ends, whether it passed or not.
struct Driver {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Driver {
    fn start(test: &str) -> Driver {
        let driver = binary("CHROMEDRIVER", "/usr/bin/chromedriver");
        binary("CHROMIUM", "/usr/bin/chromium");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = screenshot_dir();
        let log = dir.join(format!("{test}-chromedriver.log"));
        let child = Command::new(&driver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {driver}: {e}"));
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < WAIT, "chromedriver did not listen on {port}; see {}", log.display());
            std::thread::sleep(StdDuration::from_millis(50));
        }
        Driver { child, url: format!("http://127.0.0.1:{port}"), log }
    }

    /// A new headless browser session: a desktop window, or a phone's viewport.
    async fn browser(&self, phone: bool) -> Client {
        let mut args = vec!["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"];
        let mut options = json!({ "binary": binary("CHROMIUM", "/usr/bin/chromium") });
        if phone {
            args.push("--window-size=375,812");
            options["mobileEmulation"] =
                json!({ "deviceMetrics": { "width": 375, "height": 812, "pixelRatio": 2.0, "touch": true } });
        } else {
            args.push("--window-size=1280,1000");
        }
        options["args"] = json!(args);
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("no browser session: {e}; see {}", self.log.display()));
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(StdDuration::from_secs(10)),
                Some(StdDuration::from_secs(30)),
                Some(StdDuration::ZERO),
            ))
            .await
            .unwrap();
        client
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = -(self.child.id() as i32);
        // SAFETY: kill(2) on the process group this test created; no memory is involved.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < StdDuration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(StdDuration::from_millis(50));
        }
        // SAFETY: as above; whatever of the group is left (browsers) goes too.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("a screenshot");
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
}

/// Evaluates `expr` (a JavaScript expression) in the page until it is truthy.
async fn wait_until(client: &Client, expr: &str, what: &str) -> Value {
    let started = Instant::now();
    let mut last = Value::Null;
    loop {
        if let Ok(v) = client.execute(&format!("return ({expr});"), vec![]).await {
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return v;
            }
            last = v;
        }
        assert!(started.elapsed() < WAIT, "timed out waiting for {what} (`{expr}` was {last})");
        actix_rt::time::sleep(StdDuration::from_millis(100)).await;
    }
}

async fn js(client: &Client, expr: &str) -> Value {
    client.execute(&format!("return ({expr});"), vec![]).await.unwrap_or_else(|e| panic!("`{expr}`: {e}"))
}

async fn find(client: &Client, css: &str) -> fantoccini::elements::Element {
    client.wait().at_most(WAIT).for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no `{css}`: {e}"))
}

/// Clicks a seat as a person does: scrolls it into the middle of the screen (clear of the
/// sticky hold bar), then taps its label, which toggles its checkbox.
async fn click_seat(client: &Client, seat: &str) {
    js(
        client,
        &format!(
            "document.querySelector('input[data-seat=\"{seat}\"]').parentNode.scrollIntoView({{block: 'center', inline: 'center'}}) || true"
        ),
    )
    .await;
    let label = client
        .find(Locator::XPath(&format!("//input[@data-seat='{seat}']/parent::label")))
        .await
        .unwrap_or_else(|e| panic!("no seat {seat}: {e}"));
    label.click().await.unwrap_or_else(|e| panic!("cannot click seat {seat}: {e}"));
}

async fn seat_checked(client: &Client, seat: &str) -> bool {
    js(client, &format!("document.querySelector('input[data-seat=\"{seat}\"]').checked")).await == json!(true)
}

async fn wait_live(client: &Client) {
    wait_until(client, "document.getElementById('seatmap').getAttribute('data-live') === 'open'", "the live map").await;
}

async fn wait_path(client: &Client, prefix: &str) -> String {
    let v =
        wait_until(client, &format!("location.pathname.indexOf('{prefix}') === 0 && location.pathname"), prefix).await;
    v.as_str().unwrap().to_string()
}

/// No part of the page sticks out sideways.
async fn fits_width(client: &Client) -> bool {
    js(
        client,
        "document.documentElement.scrollWidth <= window.innerWidth && document.body.scrollWidth <= window.innerWidth",
    )
    .await
        == json!(true)
}

/// axe-core 3.1.1 (MPL-2.0, from the axe-selenium-python wheel on PyPI), vendored so that a
/// fresh machine runs the audit without a download.
const AXE: &str = include_str!("axe/axe.min.js");

/// Runs an axe-core audit of the page as it is now and fails on any violation whose impact
/// is serious or critical, listing each with the elements it found. The script goes in
/// through the WebDriver session (the page's Content-Security-Policy does not apply to it).
async fn audit(client: &Client, page: &str) {
    let loaded = client
        .execute(&format!("{AXE}\nreturn typeof window.axe === 'object' && window.axe.version;"), vec![])
        .await
        .unwrap_or_else(|e| panic!("axe-core did not load into {page}: {e}"));
    assert_eq!(loaded, json!("3.1.1"), "axe-core did not load into {page}");
    let found = client
        .execute_async(
            "var done = arguments[arguments.length - 1];
             axe.run(document).then(function (r) {
               done(r.violations.filter(function (v) { return v.impact === 'serious' || v.impact === 'critical'; })
                 .map(function (v) {
                   return v.impact + ' ' + v.id + ': ' + v.help + ' [' + v.nodes.map(function (n) {
                     return n.target.join(' ');
                   }).join(', ') + ']';
                 }));
             }, function (e) { done(['axe failed: ' + e]); });",
            vec![],
        )
        .await
        .unwrap_or_else(|e| panic!("the audit of {page} did not finish: {e}"));
    let found: Vec<String> = serde_json::from_value(found).expect("a list of violations");
    assert!(
        found.is_empty(),
        "{page}: {} serious or critical accessibility violation(s):\n{}",
        found.len(),
        found.join("\n")
    );
}

async fn wait_free(app: &TestApp, show: i64, seats: &[&str]) {
    let started = Instant::now();
    loop {
        let states = app.seat_states(show).await;
        if seats.iter().all(|s| states[*s] == "free") {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "seats {seats:?} were not freed: {:?}",
            seats.iter().map(|s| states[*s].clone()).collect::<Vec<_>>()
        );
        actix_rt::time::sleep(StdDuration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn the_full_flow_in_a_browser() {
    let app = spawn_app().await;
    let show = app.seed_show(8, 12, Duration::days(1)).await;
    // Others got here first: two seats held, two booked.
    app.hold(show, &["D5", "D6"]).await;
    let (_, other) = app.hold(show, &["C8", "C9"]).await;
    app.confirm(other["hold_id"].as_str().unwrap(), "Bo", "bo@example.com").await;
    let driver = Driver::start("flow");
    let b = driver.browser(false).await;

    b.goto(&app.url("/")).await.unwrap();
    find(&b, "a.movie-link").await;
    audit(&b, "the home page").await;
    find(&b, "a.movie-link").await.click().await.unwrap();
    wait_path(&b, "/movies/").await;
    shot(&b, "flow-1-movie").await;
    audit(&b, "the movie page").await;

    find(&b, &format!("a.showtime[href='/shows/{show}']")).await.click().await.unwrap();
    wait_path(&b, &format!("/shows/{show}")).await;
    wait_live(&b).await;
    click_seat(&b, "E6").await;
    click_seat(&b, "E7").await;
    assert!(seat_checked(&b, "E6").await && seat_checked(&b, "E7").await);
    let summary = find(&b, "#seat-summary").await.text().await.unwrap();
    assert!(summary.contains("2 seats selected"), "{summary}");
    js(&b, "window.scrollTo(0, 0) || true").await;
    shot(&b, "flow-2-show").await;
    audit(&b, "the show page with seats selected").await;

    find(&b, "#seat-form button[type=submit]").await.click().await.unwrap();
    wait_path(&b, "/holds/").await;
    let countdown = find(&b, "#hold-countdown").await.text().await.unwrap();
    assert!(countdown.contains("held for"), "{countdown}");
    shot(&b, "flow-3-hold").await;
    audit(&b, "the hold page").await;

    find(&b, "#c-name").await.send_keys("Ann Example").await.unwrap();
    find(&b, "#c-email").await.send_keys("ann@example.com").await.unwrap();
    find(&b, "#confirm-btn").await.click().await.unwrap();
    let code = find(&b, "[data-booking-code]").await.attr("data-booking-code").await.unwrap().unwrap();
    assert_eq!(code.len(), 8);
    let page = find(&b, ".confirmed").await.text().await.unwrap();
    assert!(page.contains("E6, E7"), "{page}");
    shot(&b, "flow-4-confirmation").await;
    audit(&b, "the confirmation").await;
    assert_eq!(app.seat_states(show).await["E6"], "booked");

    b.goto(&app.url("/bookings")).await.unwrap();
    find(&b, "#l-code").await;
    audit(&b, "the booking look-up").await;
    find(&b, "#l-code").await.send_keys(&code.to_lowercase()).await.unwrap();
    find(&b, "#l-email").await.send_keys("ann@example.com").await.unwrap();
    find(&b, ".lookup-form button[type=submit]").await.click().await.unwrap();
    let card = find(&b, ".booking-card").await.text().await.unwrap();
    assert!(card.contains(&code) && card.contains("Confirmed"), "{card}");
    shot(&b, "flow-5-lookup").await;
    audit(&b, "a looked-up booking").await;

    find(&b, ".cancel-form button[type=submit]").await.click().await.unwrap();
    // The page asks before cancelling.
    b.accept_alert().await.expect("a confirmation prompt");
    wait_until(&b, "document.querySelector('.booking-card.is-cancelled')", "the cancelled booking").await;
    let notice = find(&b, ".notice-info").await.text().await.unwrap();
    assert!(notice.contains("cancelled"), "{notice}");
    shot(&b, "flow-6-cancelled").await;
    audit(&b, "a cancelled booking").await;
    assert_eq!(app.seat_states(show).await["E6"], "free");
    b.close().await.unwrap();
}

#[actix_web::test]
async fn a_seat_taken_in_one_browser_becomes_unavailable_in_the_other() {
    let app = spawn_app().await;
    let show = app.seed_show(6, 10, Duration::days(1)).await;
    let driver = Driver::start("live");
    let (a, b) = (driver.browser(false).await, driver.browser(false).await);
    for c in [&a, &b] {
        c.goto(&app.url(&format!("/shows/{show}"))).await.unwrap();
        wait_live(c).await;
    }
    // B picks C6; A takes C5 and C6 first.
    click_seat(&b, "C6").await;
    assert!(seat_checked(&b, "C6").await);
    click_seat(&a, "C5").await;
    click_seat(&a, "C6").await;
    find(&a, "#seat-form button[type=submit]").await.click().await.unwrap();
    wait_path(&a, "/holds/").await;

    // Without a reload, B sees both seats held, loses its selection and is told why.
    wait_until(&b, "Marquee.seatState('C5') === 'held' && Marquee.seatState('C6') === 'held'", "held seats in B").await;
    assert!(!seat_checked(&b, "C6").await);
    assert_eq!(js(&b, "document.querySelector('input[data-seat=\"C6\"]').disabled").await, json!(true));
    let message = wait_until(&b, "document.getElementById('seat-message').textContent", "a message").await;
    assert!(message.as_str().unwrap().contains("C6"), "{message}");
    let free = find(&b, "#free-count").await.text().await.unwrap();
    assert_eq!(free, "58 seats free");
    shot(&b, "live-1-taken-elsewhere").await;

    // A confirms: B sees the seats booked.
    find(&a, "#c-name").await.send_keys("Ann").await.unwrap();
    find(&a, "#c-email").await.send_keys("ann@example.com").await.unwrap();
    find(&a, "#confirm-btn").await.click().await.unwrap();
    find(&a, "[data-booking-code]").await;
    wait_until(&b, "Marquee.seatState('C5') === 'booked'", "a booked seat in B").await;

    // B's connection drops and comes back; a change made meanwhile is not missed.
    js(&b, "Marquee.live.reconnect() || true").await;
    app.hold(show, &["F1"]).await;
    wait_until(&b, "Marquee.seatState('F1') === 'held'", "F1 held in B").await;
    wait_live(&b).await;
    shot(&b, "live-2-booked-elsewhere").await;
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[actix_web::test]
async fn the_hold_countdown_runs_out_and_frees_the_seats() {
    let app = spawn_app_with(|s| s.hold_duration = Duration::seconds(20)).await;
    let show = app.seed_show(4, 8, Duration::days(1)).await;
    let driver = Driver::start("expiry");
    let b = driver.browser(false).await;
    b.goto(&app.url(&format!("/shows/{show}"))).await.unwrap();
    wait_live(&b).await;
    click_seat(&b, "A1").await;
    click_seat(&b, "A2").await;
    find(&b, "#seat-form button[type=submit]").await.click().await.unwrap();
    let hold_path = wait_path(&b, "/holds/").await;
    let time = find(&b, ".countdown-time").await.text().await.unwrap();
    assert!(time.starts_with("0:"), "{time}");
    shot(&b, "expiry-1-counting").await;

    // The countdown ends (the hold lasts 20 s; wait for the page, within a bound).
    let started = Instant::now();
    loop {
        if js(&b, "!!document.querySelector('#hold-countdown.countdown-expired')").await == json!(true) {
            break;
        }
        assert!(started.elapsed() < StdDuration::from_secs(90), "the countdown never ran out");
        actix_rt::time::sleep(StdDuration::from_millis(250)).await;
    }
    let text = find(&b, "#hold-countdown").await.text().await.unwrap();
    assert!(text.contains("Your hold has expired"), "{text}");
    assert_eq!(js(&b, "document.getElementById('confirm-btn').disabled").await, json!(true));
    shot(&b, "expiry-2-expired").await;
    audit(&b, "an expired hold").await;

    wait_free(&app, show, &["A1", "A2"]).await;
    // Reloading the checkout says the same, on its own page.
    b.goto(&app.url(&hold_path)).await.unwrap();
    let page = find(&b, ".hold-expired").await.text().await.unwrap();
    assert!(page.contains("Your hold has expired"), "{page}");
    shot(&b, "expiry-3-reloaded").await;
    audit(&b, "the expired hold's page").await;
    // And the seat map offers the seats again.
    find(&b, ".hold-expired a.btn-primary").await.click().await.unwrap();
    wait_live(&b).await;
    assert_eq!(js(&b, "Marquee.seatState('A1')").await, json!("free"));
    assert_eq!(js(&b, "document.querySelector('input[data-seat=\"A1\"]').disabled").await, json!(false));
    b.close().await.unwrap();
}

#[actix_web::test]
async fn the_seat_map_works_on_a_phone() {
    let app = spawn_app().await;
    // The auditorium every imported theater gets: 12 rows of 16.
    let show = app.seed_show(12, 16, Duration::days(1)).await;
    let driver = Driver::start("phone");
    let p = driver.browser(true).await;

    p.goto(&app.url("/")).await.unwrap();
    find(&p, "a.movie-link").await;
    assert_eq!(js(&p, "window.innerWidth").await, json!(375), "a phone-sized viewport");
    assert!(fits_width(&p).await, "the home page is wider than the phone");
    shot(&p, "phone-1-home").await;
    audit(&p, "the home page at 375 px").await;

    p.goto(&app.url(&format!("/shows/{show}"))).await.unwrap();
    wait_live(&p).await;
    assert!(fits_width(&p).await, "the show page is wider than the phone");
    let map =
        js(&p, "(function(r){return [r.left, r.right]})(document.getElementById('seatmap').getBoundingClientRect())")
            .await;
    assert!(map[0].as_f64().unwrap() >= 0.0 && map[1].as_f64().unwrap() <= 375.0, "the seat map sticks out: {map}");
    let size = js(
        &p,
        "(function(r){return [r.width, r.height]})(document.querySelector('label.seat').getBoundingClientRect())",
    )
    .await;
    assert!(size[0].as_f64().unwrap() >= 32.0 && size[1].as_f64().unwrap() >= 32.0, "seats too small to tap: {size}");

    // Seats at the edge of a wide row are reached by scrolling the map, then tapped.
    click_seat(&p, "H1").await;
    click_seat(&p, "H16").await;
    assert!(seat_checked(&p, "H1").await && seat_checked(&p, "H16").await);
    // The keyboard works too: focus a seat and press space.
    js(&p, "document.querySelector('input[data-seat=\"H8\"]').focus() || true").await;
    p.active_element().await.unwrap().send_keys(" ").await.unwrap();
    assert!(seat_checked(&p, "H8").await, "space selects a focused seat");
    let summary = find(&p, "#seat-summary").await.text().await.unwrap();
    assert!(summary.contains("3 seats selected"), "{summary}");
    assert!(fits_width(&p).await);
    js(&p, "document.getElementById('seatmap').scrollIntoView() || true").await;
    shot(&p, "phone-2-show").await;
    audit(&p, "the seat map at 375 px").await;

    find(&p, "#seat-form button[type=submit]").await.click().await.unwrap();
    wait_path(&p, "/holds/").await;
    find(&p, "#confirm-btn").await;
    assert!(fits_width(&p).await, "the checkout is wider than the phone");
    shot(&p, "phone-3-hold").await;
    audit(&p, "the hold page at 375 px").await;
    p.close().await.unwrap();
}

#[actix_web::test]
async fn sold_out_and_missing_pages_say_what_happened() {
    let app = spawn_app().await;
    let show = app.seed_show(1, 4, Duration::days(1)).await;
    let (_, hold) = app.hold(show, &["A1", "A2", "A3", "A4"]).await;
    let (_, booking) = app.confirm(hold["hold_id"].as_str().unwrap(), "Ann", "ann@example.com").await;
    let driver = Driver::start("pages");
    let b = driver.browser(false).await;

    b.goto(&app.url(&format!("/shows/{show}"))).await.unwrap();
    let notice = find(&b, ".notice-warn").await.text().await.unwrap();
    assert!(notice.contains("Sold out"), "{notice}");
    assert_eq!(js(&b, "document.getElementById('seat-form') === null").await, json!(true), "no form to hold seats");
    find(&b, ".notice-warn a[href^='/movies/']").await;
    shot(&b, "pages-1-sold-out").await;
    audit(&b, "a sold-out show").await;
    // A cancellation frees the seats: the open page offers them.
    wait_live(&b).await;
    let code = booking["code"].as_str().unwrap();
    let (status, _) =
        app.post_json(&format!("/api/bookings/{code}/cancel"), &json!({"email": "ann@example.com"})).await;
    assert_eq!(status, actix_web::http::StatusCode::OK);
    let back = wait_until(
        &b,
        "document.getElementById('seats-back') && document.getElementById('seats-back').textContent",
        "a reload offer",
    )
    .await;
    assert!(back.as_str().unwrap().contains("became free"), "{back}");
    shot(&b, "pages-2-seats-back").await;
    audit(&b, "a sold-out show with seats back").await;

    b.goto(&app.url("/no/such/page")).await.unwrap();
    let page = find(&b, ".error-page").await.text().await.unwrap();
    assert!(page.contains("404") && page.contains("Not found"), "{page}");
    find(&b, ".error-page a[href='/']").await;
    shot(&b, "pages-3-not-found").await;
    audit(&b, "the 404 page").await;
    b.close().await.unwrap();
}

#[actix_web::test]
async fn the_admin_pages_pass_the_audit() {
    const PASSWORD: &str = "a long admin password";
    let app =
        spawn_app_with(|s| s.admin_password = Some(marquee::domain::AdminPassword::hash(PASSWORD).unwrap())).await;
    let show = app.seed_show(2, 4, Duration::days(1)).await;
    let (_, hold) = app.hold(show, &["A1"]).await;
    app.confirm(hold["hold_id"].as_str().unwrap(), "Ann", "ann@example.com").await;
    let driver = Driver::start("admin");
    let b = driver.browser(false).await;

    b.goto(&app.url("/admin")).await.unwrap();
    find(&b, "#a-password").await;
    audit(&b, "the admin login").await;
    find(&b, "#a-password").await.send_keys(PASSWORD).await.unwrap();
    find(&b, ".login-form button[type=submit]").await.click().await.unwrap();
    wait_until(&b, "location.pathname === '/admin'", "the dashboard").await;
    shot(&b, "admin-1-dashboard").await;
    audit(&b, "the admin dashboard").await;
    for (path, name) in [
        ("/admin/shows".to_string(), "the admin's shows"),
        (format!("/admin/shows/{show}"), "a show's bookings"),
        ("/admin/account".to_string(), "the admin's sessions"),
        ("/admin/theaters".to_string(), "the theaters and their auditoriums"),
        // seed_show: the layout, the theater, the movie, the show, on consecutive ids.
        (format!("/admin/theaters/{}", show - 2), "an auditorium's layout and editor"),
    ] {
        b.goto(&app.url(&path)).await.unwrap();
        wait_until(&b, &format!("location.pathname === '{path}' && document.readyState === 'complete'"), name).await;
        audit(&b, name).await;
    }
    // A malformed layout comes back with its error above the form.
    let text = find(&b, "#layout-text").await;
    text.clear().await.unwrap();
    text.send_keys("S = Standard 10\nA: SS!S\n").await.unwrap();
    find(&b, "form[action$='/layout'] button[type=submit]").await.click().await.unwrap();
    find(&b, "#layout-error").await;
    shot(&b, "admin-2-layout-error").await;
    audit(&b, "a refused layout").await;
    b.close().await.unwrap();
}

/// The e-ticket on a phone, then the door's check-in page scanning it twice: the first
/// scan admits and names the seats, the second says when and through which node; the
/// field is cleared and ready for the next scan each time.
#[actix_web::test]
async fn the_e_ticket_and_checking_it_in_twice_on_a_phone() {
    const PASSWORD: &str = "door password 1234";
    let app = spawn_app_with(|s| {
        s.ticket_key = Some(marquee::config::Secret::new("browser ticket key"));
        s.admin_password = Some(marquee::domain::AdminPassword::hash(PASSWORD).unwrap());
    })
    .await;
    let show = app.seed_show(6, 10, Duration::days(1)).await;
    let (_, hold) = app.hold(show, &["B5", "B6"]).await;
    let (_, booking) = app.confirm(hold["hold_id"].as_str().unwrap(), "Ann", "ann@example.com").await;
    let code = booking["code"].as_str().unwrap().to_string();
    let driver = Driver::start("checkin");
    let b = driver.browser(true).await;

    b.goto(&app.url("/bookings")).await.unwrap();
    find(&b, "#l-code").await.send_keys(&code).await.unwrap();
    find(&b, "#l-email").await.send_keys("ann@example.com").await.unwrap();
    find(&b, ".lookup-form button[type=submit]").await.click().await.unwrap();
    let ticket = find(&b, ".e-ticket").await;
    let token = ticket.attr("data-ticket").await.unwrap().expect("the token");
    let text = ticket.text().await.unwrap();
    assert!(text.contains("B5, B6") && text.contains(&code), "{text}");
    // The QR code is drawn, at a size a scanner reads, and the page fits the phone.
    let width = js(&b, "document.querySelector('.e-ticket-qr svg').getBoundingClientRect().width").await;
    assert!(width.as_f64().unwrap() >= 150.0, "{width}");
    assert!(fits_width(&b).await, "the e-ticket fits the phone's width");
    js(&b, "document.querySelector('.e-ticket').scrollIntoView() || true").await;
    shot(&b, "checkin-1-e-ticket").await;

    b.goto(&app.url("/admin/checkin")).await.unwrap();
    find(&b, "#a-password").await.send_keys(PASSWORD).await.unwrap();
    find(&b, "form button[type=submit]").await.click().await.unwrap();
    wait_until(&b, "document.querySelector('.admin-nav')", "logged in").await;
    b.goto(&app.url("/admin/checkin")).await.unwrap();
    find(&b, "#ticket").await;
    // A scanner types the token and Enter into the focused field.
    wait_until(&b, "document.activeElement && document.activeElement.id === 'ticket'", "the focused field").await;
    find(&b, "#ticket").await.send_keys(&format!("{token}\u{E007}")).await.unwrap();
    wait_until(&b, "document.getElementById('checkin-result').getAttribute('data-result') === 'admitted'", "admit")
        .await;
    let first = find(&b, "#checkin-result").await.text().await.unwrap();
    assert!(first.contains("Admit 2: B5, B6"), "{first}");
    assert_eq!(js(&b, "location.pathname").await, json!("/admin/checkin"), "no page load");
    assert_eq!(js(&b, "document.getElementById('ticket').value").await, json!(""));
    assert!(fits_width(&b).await);
    shot(&b, "checkin-2-admitted").await;

    find(&b, "#ticket").await.send_keys(&format!("{token}\u{E007}")).await.unwrap();
    wait_until(
        &b,
        "document.getElementById('checkin-result').getAttribute('data-result') === 'already_admitted'",
        "refusal",
    )
    .await;
    let second = find(&b, "#checkin-result").await.text().await.unwrap();
    assert!(second.contains("already admitted at") && second.contains("through node 1"), "{second}");
    shot(&b, "checkin-3-already-admitted").await;
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM admissions").await, 1);
}

/// A show in the auditorium every imported theater gets (aisles, wheelchair spaces with
/// companion seats), seeded through the log as an import would.
async fn seed_default_auditorium(app: &TestApp, base: i64) -> i64 {
    let (mut change, id) = common::show_change(base, 1, 1, Duration::days(1));
    let layout =
        marquee::catalog::layout::text_change(base, "Hall 1", &marquee::catalog::layout::default_auditorium(12, 16, 6));
    change.layouts = layout.layouts;
    change.categories = layout.categories;
    change.rows = layout.rows;
    app.writable().await;
    app.state.writer.append(marquee::wal::Change::Catalog(Box::new(change))).await.expect("seed");
    id
}

#[actix_web::test]
async fn a_real_auditorium_on_a_phone_wheelchair_spaces_and_best_available() {
    let app = spawn_app().await;
    let show = seed_default_auditorium(&app, 700).await;
    let driver = Driver::start("auditorium");
    let p = driver.browser(true).await;
    p.goto(&app.url(&format!("/shows/{show}"))).await.unwrap();
    wait_live(&p).await;
    assert!(fits_width(&p).await, "the show page is wider than the phone");
    // Aisles are drawn, and a wheelchair space says what it is to a screen reader.
    assert!(js(&p, "document.querySelectorAll('#seatmap .aisle').length").await.as_u64().unwrap() > 0, "no aisle");
    let label =
        |seat: &str| format!("document.querySelector('input[data-seat=\"{seat}\"]').getAttribute('aria-label')");
    let l1 = js(&p, &label("L1")).await;
    assert!(l1.as_str().unwrap().contains("wheelchair space"), "{l1}");
    js(&p, "document.getElementById('seatmap').scrollIntoView() || true").await;
    shot(&p, "auditorium-1-seat-map").await;
    audit(&p, "a real auditorium's seat map at 375 px").await;

    // Someone else holds the wheelchair space: the live map greys it out and still names it.
    let (status, body) =
        app.post_json(&format!("/api/shows/{show}/holds"), &json!({"seats": ["L1"], "wheelchair": true})).await;
    assert_eq!(status.as_u16(), 201, "{body}");
    wait_until(&p, "Marquee.seatState('L1') === 'held'", "L1 held on the live map").await;
    let l1 = js(&p, &label("L1")).await;
    let l1 = l1.as_str().unwrap();
    assert!(l1.contains("wheelchair space") && l1.ends_with("held"), "the live update lost the seat's kind: {l1}");
    // The whole auditorium on a desktop screen (the README's picture of the seat map).
    let d = driver.browser(false).await;
    d.goto(&app.url(&format!("/shows/{show}"))).await.unwrap();
    wait_live(&d).await;
    click_seat(&d, "E7").await;
    click_seat(&d, "E8").await;
    js(&d, "document.querySelector('.legend').scrollIntoView() || true").await;
    shot(&d, "auditorium-0-desktop").await;
    audit(&d, "a real auditorium's seat map on a desktop").await;
    d.close().await.unwrap();

    // "Find me 3 seats": three side by side, chosen by the show, held at once. (Typed, then
    // Enter: the form is sent as a keyboard user sends it.)
    let count = find(&p, "#best-count").await;
    count.clear().await.unwrap();
    count.send_keys("3\u{E007}").await.unwrap();
    let path = wait_path(&p, "/holds/").await;
    let hold_id = path.trim_start_matches("/holds/").to_string();
    let (status, hold) = app.get_json(&format!("/api/holds/{hold_id}")).await;
    assert_eq!(status.as_u16(), 200, "{hold}");
    let seats: Vec<String> =
        hold["items"].as_array().unwrap().iter().map(|i| i["seat"].as_str().unwrap().to_string()).collect();
    assert_eq!(seats.len(), 3, "{hold}");
    let text = find(&p, "main").await.text().await.unwrap();
    for s in &seats {
        assert!(text.contains(s.as_str()), "the hold page does not list {s}: {text}");
    }
    assert!(fits_width(&p).await);
    shot(&p, "auditorium-2-best-hold").await;
    audit(&p, "the best-available hold at 375 px").await;
    p.close().await.unwrap();
}

/// An open show page whose auditorium gets a new layout: the live map's fresh snapshot no
/// longer matches the seats drawn, and the page says so with a link that reloads it.
#[actix_web::test]
async fn an_open_page_offers_the_new_seat_map_when_the_layout_changes() {
    const PASSWORD: &str = "a long admin password";
    let app =
        spawn_app_with(|s| s.admin_password = Some(marquee::domain::AdminPassword::hash(PASSWORD).unwrap())).await;
    let show = app.seed_show(2, 4, Duration::days(1)).await;
    let driver = Driver::start("layout-change");
    let b = driver.browser(false).await;
    b.goto(&app.url(&format!("/shows/{show}"))).await.unwrap();
    wait_live(&b).await;
    assert_eq!(js(&b, "!!document.getElementById('layout-changed')").await, json!(false), "no notice yet");

    let mut admin = common::browser::Browser::logged_in(&app.address, PASSWORD).await;
    admin.get("/admin/theaters").await;
    // seed_show: the layout, the theater, the movie, the show, on consecutive ids.
    let res = admin
        .post_json_csrf(
            &format!("/admin/api/theaters/{}/layout", show - 2),
            &json!({ "text": "S = Standard 10\nA: SS_SS\nB: SSSS\nC: WC_SS\n" }),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);

    let text = wait_until(
        &b,
        "document.getElementById('layout-changed') && document.getElementById('layout-changed').textContent",
        "the notice of a new seat map",
    )
    .await;
    assert!(text.as_str().unwrap().contains("seating of this show has changed"), "{text}");
    shot(&b, "layout-change-1-notice").await;
    audit(&b, "a show page with the new-layout notice").await;
    find(&b, "#layout-changed a").await.click().await.unwrap();
    wait_until(&b, "document.querySelector('input[data-seat=\"C1\"]') !== null", "the new seat map").await;
    wait_live(&b).await;
    assert_eq!(js(&b, "!!document.getElementById('layout-changed')").await, json!(false), "the new page matches");
    b.close().await.unwrap();
}
