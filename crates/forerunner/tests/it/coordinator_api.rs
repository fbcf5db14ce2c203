//! The coordinator's GitLab REST API v4, endpoint by endpoint, against the
//! real server on 127.0.0.1:0: status codes, bodies, error paths.

use forerunner_testkit::TestCoordinator;
use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

/// Sends a request with an optional PAT and JSON body.
async fn call(
    c: &TestCoordinator,
    method: Method,
    path: &str,
    pat: Option<&str>,
    body: Option<Value>,
) -> Response {
    let mut req = c.client().request(method, c.api(path));
    if let Some(pat) = pat {
        req = req.header("PRIVATE-TOKEN", pat);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("request failed")
}

/// Asserts the status and returns the JSON body (`Null` when empty).
async fn expect(resp: Response, status: StatusCode) -> Value {
    let got = resp.status();
    let is_json = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
    let text = resp.text().await.unwrap();
    assert_eq!(got, status, "unexpected status, body: {text}");
    if text.is_empty() {
        return Value::Null;
    }
    assert!(is_json, "answer is not application/json: {text}");
    serde_json::from_str(&text).unwrap()
}

fn message(m: &str) -> Value {
    json!({ "message": m })
}

#[tokio::test(flavor = "multi_thread")]
async fn health_probes_answer_200() {
    let c = TestCoordinator::spawn().await;
    for probe in ["/-/health", "/-/readiness", "/-/liveness"] {
        let resp = c
            .client()
            .get(format!("{}{probe}", c.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{probe}");
    }
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_routes_and_missing_credentials() {
    let c = TestCoordinator::spawn().await;
    let body = expect(
        call(&c, Method::GET, "/nope", None, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(body, json!({"error": "404 Not Found"}));
    for path in [
        "/user",
        "/version",
        "/runners",
        "/projects",
        "/groups",
        "/users",
    ] {
        let body = expect(
            call(&c, Method::GET, path, None, None).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert_eq!(body, message("401 Unauthorized"), "{path}");
        let body = expect(
            call(&c, Method::GET, path, Some("glpat-not-a-token"), None).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert_eq!(body, message("401 Unauthorized"), "{path}");
    }
    // A runner or registration token is not a personal access token.
    let (_, runner_token) = c.create_instance_runner().await;
    for wrong in [runner_token.as_str(), c.registration_token.as_str()] {
        let body = expect(
            call(&c, Method::GET, "/user", Some(wrong), None).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
        assert_eq!(body, message("401 Unauthorized"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn current_user_version_and_users() {
    let c = TestCoordinator::spawn().await;
    let me = expect(
        call(&c, Method::GET, "/user", Some(&c.root_token), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(me["username"], "root");
    assert_eq!(me["is_admin"], true);
    assert_eq!(me["web_url"], format!("{}/root", c.url));
    // Bearer and private_token work too.
    let resp = c
        .client()
        .get(c.api("/user"))
        .bearer_auth(&c.root_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = c
        .client()
        .get(c.api(&format!("/user?private_token={}", c.root_token)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let v = expect(
        call(&c, Method::GET, "/version", Some(&c.root_token), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(v["version"].as_str().unwrap().split('.').count(), 3);

    let alice = c.create_user("alice", false, &["api"]).await;
    let users = expect(
        call(&c, Method::GET, "/users", Some(&c.root_token), None).await,
        StatusCode::OK,
    )
    .await;
    let names: Vec<_> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["root", "alice"]);
    let body = expect(
        call(&c, Method::GET, "/users", Some(&alice.token), None).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(body, message("403 Forbidden"));
    let me = expect(
        call(&c, Method::GET, "/user", Some(&alice.token), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(me["username"], "alice");
    assert!(me.get("is_admin").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn token_scopes_are_enforced() {
    let c = TestCoordinator::spawn().await;
    let creator = c.create_user("creator", true, &["create_runner"]).await;
    let reader = c.create_user("reader", true, &["read_api"]).await;
    // create_runner alone may create runners but not read the profile.
    let body = expect(
        call(&c, Method::GET, "/user", Some(&creator.token), None).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(body["error"], "insufficient_scope");
    let v = expect(
        call(
            &c,
            Method::POST,
            "/user/runners",
            Some(&creator.token),
            Some(json!({"runner_type": "instance_type"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert!(v["token"].as_str().unwrap().starts_with("glrt-t1_"));
    // read_api reads but does not write.
    expect(
        call(&c, Method::GET, "/projects", Some(&reader.token), None).await,
        StatusCode::OK,
    )
    .await;
    let body = expect(
        call(
            &c,
            Method::POST,
            "/groups",
            Some(&reader.token),
            Some(json!({"name": "g"})),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(body["error"], "insufficient_scope");
    let body = expect(
        call(
            &c,
            Method::POST,
            "/user/runners",
            Some(&reader.token),
            Some(json!({"runner_type": "instance_type"})),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(body["error"], "insufficient_scope");
}

#[tokio::test(flavor = "multi_thread")]
async fn user_runners_create_with_every_type_and_error() {
    let c = TestCoordinator::spawn().await;
    let group = c.create_group("Runner Group").await;
    let gid = group["id"].as_i64().unwrap();
    let project = c.create_project("proj", Some(gid)).await;
    let pid = project["id"].as_i64().unwrap();
    let root = Some(c.root_token.as_str());

    for (attrs, prefix) in [
        (json!({"runner_type": "instance_type"}), "glrt-t1_"),
        (
            json!({"runner_type": "group_type", "group_id": gid}),
            "glrt-t2_",
        ),
        (
            json!({"runner_type": "project_type", "project_id": pid}),
            "glrt-t3_",
        ),
    ] {
        let v = expect(
            call(&c, Method::POST, "/user/runners", root, Some(attrs)).await,
            StatusCode::CREATED,
        )
        .await;
        assert!(v["id"].as_i64().unwrap() > 0);
        assert!(v["token"].as_str().unwrap().starts_with(prefix), "{v}");
        assert!(v["token_expires_at"].is_null());
    }

    // Form bodies work as well as JSON.
    let resp = c
        .client()
        .post(c.api("/user/runners"))
        .header("PRIVATE-TOKEN", &c.root_token)
        .form(&[
            ("runner_type", "group_type"),
            ("group_id", &gid.to_string()),
            ("tag_list", "a,b"),
            ("run_untagged", "false"),
        ])
        .send()
        .await
        .unwrap();
    let v = expect(resp, StatusCode::CREATED).await;
    let id = v["id"].as_i64().unwrap();
    let details = expect(
        call(&c, Method::GET, &format!("/runners/{id}"), root, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(details["tag_list"], json!(["a", "b"]));
    assert_eq!(details["run_untagged"], false);

    let cases = [
        (json!({}), StatusCode::BAD_REQUEST, json!({"error": "runner_type is missing"})),
        (
            json!({"runner_type": "bogus"}),
            StatusCode::BAD_REQUEST,
            json!({"error": "runner_type does not have a valid value"}),
        ),
        (
            json!({"runner_type": "group_type"}),
            StatusCode::BAD_REQUEST,
            json!({"error": "group_id is missing"}),
        ),
        (
            json!({"runner_type": "project_type"}),
            StatusCode::BAD_REQUEST,
            json!({"error": "project_id is missing"}),
        ),
        (
            json!({"runner_type": "group_type", "group_id": 9999}),
            StatusCode::BAD_REQUEST,
            message("400 Bad request - Missing/invalid group"),
        ),
        (
            json!({"runner_type": "project_type", "project_id": 9999}),
            StatusCode::BAD_REQUEST,
            message("400 Bad request - Missing/invalid project"),
        ),
        (
            json!({"runner_type": "instance_type", "run_untagged": false}),
            StatusCode::BAD_REQUEST,
            message("400 Bad request - Tags list can not be empty when runner is not allowed to pick untagged jobs"),
        ),
        (
            json!({"runner_type": "instance_type", "access_level": "nope"}),
            StatusCode::BAD_REQUEST,
            json!({"error": "access_level does not have a valid value"}),
        ),
    ];
    for (attrs, status, body) in cases {
        let got = expect(
            call(&c, Method::POST, "/user/runners", root, Some(attrs.clone())).await,
            status,
        )
        .await;
        assert_eq!(got, body, "for {attrs}");
    }

    // A non-admin may not create instance runners nor runners of others' groups.
    let bob = c.create_user("bob", false, &["api"]).await;
    for attrs in [
        json!({"runner_type": "instance_type"}),
        json!({"runner_type": "group_type", "group_id": gid}),
        json!({"runner_type": "project_type", "project_id": pid}),
    ] {
        let got = expect(
            call(
                &c,
                Method::POST,
                "/user/runners",
                Some(&bob.token),
                Some(attrs),
            )
            .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(got, message("403 Forbidden - Insufficient permissions"));
    }
    // Without a token: 401.
    let got = expect(
        call(
            &c,
            Method::POST,
            "/user/runners",
            None,
            Some(json!({"runner_type": "instance_type"})),
        )
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(got, message("401 Unauthorized"));
    // A malformed body is a 400, not a 500.
    let resp = c
        .client()
        .post(c.api("/user/runners"))
        .header("PRIVATE-TOKEN", &c.root_token)
        .header("content-type", "application/json")
        .body("{\"runner_type\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = c
        .client()
        .post(c.api("/user/runners"))
        .header("PRIVATE-TOKEN", &c.root_token)
        .json(&json!({"runner_type": "instance_type", "paused": "maybe"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_registration_with_every_registration_token() {
    let c = TestCoordinator::spawn().await;
    let group = c.create_group("legacy").await;
    let gid = group["id"].as_i64().unwrap();
    let project = c.create_project("legacy-project", Some(gid)).await;
    let pid = project["id"].as_i64().unwrap();
    let group_token = c.group_registration_token(gid).await;
    let project_token = c.project_registration_token(pid).await;
    assert!(group_token.starts_with("GR1348941"));

    for (token, runner_type) in [
        (c.registration_token.clone(), "instance_type"),
        (group_token, "group_type"),
        (project_token, "project_type"),
    ] {
        // As the official runner sends it: tag_list as CSV, info, every attribute.
        let v = expect(
            call(
                &c,
                Method::POST,
                "/runners",
                None,
                Some(json!({
                    "token": token, "description": "legacy runner", "tag_list": "x, y",
                    "run_untagged": false, "locked": true, "access_level": "ref_protected",
                    "maximum_timeout": 3600, "paused": true, "maintenance_note": "note",
                    "info": {"name": "gitlab-runner", "version": "17.0.0", "platform": "linux"},
                })),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let id = v["id"].as_i64().unwrap();
        let runner_token = v["token"].as_str().unwrap().to_owned();
        assert!(runner_token.starts_with("glrtr-"), "{runner_token}");
        let d = expect(
            call(
                &c,
                Method::GET,
                &format!("/runners/{id}"),
                Some(&c.root_token),
                None,
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(d["runner_type"], runner_type);
        assert_eq!(d["description"], "legacy runner");
        assert_eq!(d["tag_list"], json!(["x", "y"]));
        assert_eq!(d["run_untagged"], false);
        assert_eq!(d["locked"], true);
        assert_eq!(d["access_level"], "ref_protected");
        assert_eq!(d["maximum_timeout"], 3600);
        assert_eq!(d["paused"], true);
        assert_eq!(d["active"], false);
        assert_eq!(d["maintenance_note"], "note");
        assert_eq!(d["name"], "gitlab-runner");
        assert_eq!(d["status"], "never_contacted");
        if runner_type == "project_type" {
            assert_eq!(d["projects"][0]["id"], pid);
        }
        if runner_type == "group_type" {
            assert_eq!(d["groups"][0]["id"], gid);
        }
        // The issued token authenticates.
        expect(
            call(
                &c,
                Method::POST,
                "/runners/verify",
                None,
                Some(json!({"token": runner_token})),
            )
            .await,
            StatusCode::OK,
        )
        .await;
    }

    // Any other token is refused with GitLab's exact body — a PAT included.
    let (_, glrt) = c.create_instance_runner().await;
    for token in [
        c.root_token.as_str(),
        glrt.as_str(),
        "GR1348941unknown",
        "garbage",
    ] {
        let got = expect(
            call(
                &c,
                Method::POST,
                "/runners",
                None,
                Some(json!({"token": token})),
            )
            .await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(
            got,
            message("403 Forbidden - invalid token supplied"),
            "{token}"
        );
    }
    let got = expect(
        call(&c, Method::POST, "/runners", None, Some(json!({}))).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(got, json!({"error": "token is missing"}));
    // Model validation.
    let got = expect(
        call(
            &c,
            Method::POST,
            "/runners",
            None,
            Some(json!({"token": c.registration_token, "run_untagged": false})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        got,
        json!({"message": {"tags_list": ["can not be empty when runner is not allowed to pick untagged jobs"]}})
    );
    let got = expect(
        call(
            &c,
            Method::POST,
            "/runners",
            None,
            Some(json!({"token": c.registration_token, "maximum_timeout": 60})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        got,
        json!({"message": {"maximum_timeout": ["needs to be at least 10 minutes"]}})
    );
    let got = expect(
        call(
            &c,
            Method::POST,
            "/runners",
            None,
            Some(json!({"token": c.registration_token, "active": true, "paused": false})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        got,
        json!({"error": "active, paused are mutually exclusive"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_registration_can_be_disallowed() {
    let c = TestCoordinator::spawn().await;
    let root = Some(c.root_token.as_str());
    let s = expect(
        call(&c, Method::GET, "/application/settings", root, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(s["allow_runner_registration_token"], true);
    // Form-encoded, as `curl --data` would send it.
    let resp = c
        .client()
        .put(c.api("/application/settings"))
        .header("PRIVATE-TOKEN", &c.root_token)
        .form(&[("allow_runner_registration_token", "false")])
        .send()
        .await
        .unwrap();
    let s = expect(resp, StatusCode::OK).await;
    assert_eq!(s["allow_runner_registration_token"], false);
    let got = expect(
        call(
            &c,
            Method::POST,
            "/runners",
            None,
            Some(json!({"token": c.registration_token})),
        )
        .await,
        StatusCode::GONE,
    )
    .await;
    assert_eq!(got, message("410 Gone - runner registration disallowed"));
    // The new workflow is unaffected.
    c.create_instance_runner().await;
    // Non-admins may not change settings.
    let eve = c.create_user("eve", false, &["api"]).await;
    let got = expect(
        call(
            &c,
            Method::PUT,
            "/application/settings",
            Some(&eve.token),
            Some(json!({"allow_runner_registration_token": true})),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(got, message("403 Forbidden"));
    // Switching back re-enables registration.
    expect(
        call(
            &c,
            Method::PUT,
            "/application/settings",
            root,
            Some(json!({"allow_runner_registration_token": true})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    expect(
        call(
            &c,
            Method::POST,
            "/runners",
            None,
            Some(json!({"token": c.registration_token})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_records_managers_and_delete_makes_tokens_invalid() {
    let c = TestCoordinator::spawn().await;
    let root = Some(c.root_token.as_str());
    let (id, token) = c.create_instance_runner().await;

    let info = json!({"name": "gitlab-runner", "version": "17.5.0", "revision": "abc",
        "platform": "linux", "architecture": "amd64", "executor": "shell"});
    for system_id in ["s_000000000001", "s_000000000002"] {
        let v = expect(
            call(
                &c,
                Method::POST,
                "/runners/verify",
                None,
                Some(json!({"token": token, "system_id": system_id, "info": info})),
            )
            .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(v["id"], id);
        assert_eq!(v["token"], token.as_str());
        assert!(v["token_expires_at"].is_null());
    }
    let managers = expect(
        call(
            &c,
            Method::GET,
            &format!("/runners/{id}/managers"),
            root,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let managers = managers.as_array().unwrap();
    assert_eq!(managers.len(), 2);
    assert_eq!(managers[0]["system_id"], "s_000000000001");
    assert_eq!(managers[0]["version"], "17.5.0");
    assert_eq!(managers[0]["platform"], "linux");
    assert_eq!(managers[0]["architecture"], "amd64");
    assert_eq!(managers[0]["executor"], "shell");
    assert_eq!(managers[0]["ip_address"], "127.0.0.1");
    assert_eq!(managers[0]["status"], "online");
    assert!(managers[0]["contacted_at"].is_string());
    let d = expect(
        call(&c, Method::GET, &format!("/runners/{id}"), root, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(d["status"], "online");
    assert_eq!(d["online"], true);
    assert_eq!(d["version"], "17.5.0");

    // Unknown tokens: 403.
    for bad in [
        json!({"token": "glrt-t1_unknown"}),
        json!({"token": c.root_token}),
    ] {
        let got = expect(
            call(&c, Method::POST, "/runners/verify", None, Some(bad)).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(got, message("403 Forbidden"));
    }
    let got = expect(
        call(&c, Method::POST, "/runners/verify", None, Some(json!({}))).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(got, json!({"error": "token is missing"}));

    // DELETE /runners/managers removes one machine.
    let got = expect(
        call(
            &c,
            Method::DELETE,
            "/runners/managers",
            None,
            Some(json!({"token": token, "system_id": "s_nope"})),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(got, message("404 Runner manager not found Not Found"));
    let got = expect(
        call(
            &c,
            Method::DELETE,
            "/runners/managers",
            None,
            Some(json!({"token": token})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(got, json!({"error": "system_id is missing"}));
    let got = expect(
        call(
            &c,
            Method::DELETE,
            "/runners/managers",
            None,
            Some(json!({"token": c.registration_token, "system_id": "s_000000000001"})),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(got, message("403 Forbidden"));
    expect(
        call(
            &c,
            Method::DELETE,
            "/runners/managers",
            None,
            Some(json!({"token": token, "system_id": "s_000000000001"})),
        )
        .await,
        StatusCode::NO_CONTENT,
    )
    .await;
    let managers = expect(
        call(
            &c,
            Method::GET,
            &format!("/runners/{id}/managers"),
            root,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(managers.as_array().unwrap().len(), 1);

    // DELETE /runners with the token in the query string (python-gitlab's form).
    let got = expect(
        call(
            &c,
            Method::DELETE,
            "/runners?token=glrt-t1_unknown",
            None,
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(got, message("403 Forbidden"));
    let resp = c
        .client()
        .delete(c.api(&format!("/runners?token={token}")))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    expect(resp, StatusCode::NO_CONTENT).await;
    let got = expect(
        call(
            &c,
            Method::POST,
            "/runners/verify",
            None,
            Some(json!({"token": token})),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(got, message("403 Forbidden"));
    expect(
        call(&c, Method::GET, &format!("/runners/{id}"), root, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // The official runner's form: DELETE with a JSON body.
    let (_, token2) = c.create_instance_runner().await;
    expect(
        call(
            &c,
            Method::DELETE,
            "/runners",
            None,
            Some(json!({"token": token2})),
        )
        .await,
        StatusCode::NO_CONTENT,
    )
    .await;
    expect(
        call(
            &c,
            Method::POST,
            "/runners/verify",
            None,
            Some(json!({"token": token2})),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn runners_reset_their_tokens() {
    let c = TestCoordinator::spawn().await;
    let group = c.create_group("reset").await;
    let (id, old) = c
        .create_runner(json!({"runner_type": "group_type", "group_id": group["id"]}))
        .await;
    let v = expect(
        call(
            &c,
            Method::POST,
            "/runners/reset_authentication_token",
            None,
            Some(json!({"token": old})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let new = v["token"].as_str().unwrap().to_owned();
    assert!(new.starts_with("glrt-t2_"));
    assert_ne!(new, old);
    assert!(v.as_object().unwrap().contains_key("token_expires_at"));
    expect(
        call(
            &c,
            Method::POST,
            "/runners/verify",
            None,
            Some(json!({"token": old})),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let v = expect(
        call(
            &c,
            Method::POST,
            "/runners/verify",
            None,
            Some(json!({"token": new})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(v["id"], id);
    let got = expect(
        call(
            &c,
            Method::POST,
            "/runners/reset_authentication_token",
            None,
            Some(json!({"token": old})),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(got, message("403 Forbidden"));

    // The management variant, with a PAT.
    let v = expect(
        call(
            &c,
            Method::POST,
            &format!("/runners/{id}/reset_authentication_token"),
            Some(&c.root_token),
            None,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let newer = v["token"].as_str().unwrap();
    expect(
        call(
            &c,
            Method::POST,
            "/runners/verify",
            None,
            Some(json!({"token": newer})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    // A runner token is not a PAT.
    let got = expect(
        call(
            &c,
            Method::POST,
            &format!("/runners/{id}/reset_authentication_token"),
            Some(newer),
            None,
        )
        .await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(got, message("401 Unauthorized"));
}
