//! The coordinator's GitLab REST API v4, endpoint by endpoint, against the
//! real server on 127.0.0.1:0: status codes, bodies, error paths.

use std::time::Duration;

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
        assert!(resp.headers().contains_key("x-request-id"), "{probe}");
    }
    let resp = c
        .client()
        .get(format!("{}/-/liveness", c.url))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "abc-123");
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
    let body = expect(
        call(&c, Method::PATCH, "/runners/verify", None, None).await,
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;
    assert_eq!(body, json!({"error": "405 Not Allowed"}));
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
    assert_eq!(details["created_by"]["username"], "root");

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
        assert!(d.get("created_by").is_none(), "{d}");
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

    // `info` is read leniently, as GitLab only requires an object.
    expect(
        call(
            &c,
            Method::POST,
            "/runners/verify",
            None,
            Some(json!({"token": token, "system_id": "s_000000000002",
                "info": {"version": 17, "features": {"x": "odd", "y": {}}, "labels": {"n": 1}}})),
        )
        .await,
        StatusCode::OK,
    )
    .await;

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

/// GET with a PAT and optional Host header; returns (status, headers, JSON).
async fn get_with_host(
    c: &TestCoordinator,
    path: &str,
    pat: &str,
    host: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = c.client().get(c.api(path)).header("PRIVATE-TOKEN", pat);
    if let Some(host) = host {
        req = req.header("host", host);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn runner_management_respects_ownership() {
    let c = TestCoordinator::spawn().await;
    let alice = c.create_user("alice", false, &["api"]).await;
    let bob = c.create_user("bob", false, &["api"]).await;
    let a = Some(alice.token.as_str());
    let b = Some(bob.token.as_str());
    let group = expect(
        call(
            &c,
            Method::POST,
            "/groups",
            a,
            Some(json!({"name": "alice group"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let v = expect(
        call(
            &c,
            Method::POST,
            "/user/runners",
            a,
            Some(json!({"runner_type": "group_type", "group_id": group["id"], "tag_list": ["x"]})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let rid = v["id"].as_i64().unwrap();
    let (instance_id, _) = c
        .create_runner(json!({"runner_type": "instance_type", "maintenance_note": "admins only"}))
        .await;
    let path = format!("/runners/{rid}");

    // Owner: list, get, update, managers.
    let owned = expect(
        call(&c, Method::GET, "/runners", a, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&owned), [rid]);
    let none = expect(
        call(&c, Method::GET, "/runners", b, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&none), Vec::<i64>::new());
    let d = expect(call(&c, Method::GET, &path, a, None).await, StatusCode::OK).await;
    assert_eq!(d["groups"][0]["id"], group["id"]);
    assert_eq!(d["is_shared"], false);
    // Others: 403 with GitLab's reasons; instance runners are visible to all.
    let got = expect(
        call(&c, Method::GET, &path, b, None).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(got, message("403 Forbidden - No access granted"));
    let got = expect(
        call(&c, Method::PUT, &path, b, Some(json!({"description": "x"}))).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(got, message("403 Forbidden"));
    expect(
        call(&c, Method::DELETE, &path, b, None).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    expect(
        call(
            &c,
            Method::GET,
            &format!("/runners/{rid}/managers"),
            b,
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    expect(
        call(
            &c,
            Method::POST,
            &format!("/runners/{rid}/reset_authentication_token"),
            b,
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let d = expect(
        call(&c, Method::GET, &format!("/runners/{instance_id}"), b, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(d["is_shared"], true);
    assert!(d["maintenance_note"].is_null(), "{d}");
    let d = expect(
        call(
            &c,
            Method::GET,
            &format!("/runners/{instance_id}"),
            Some(&c.root_token),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(d["maintenance_note"], "admins only");
    expect(
        call(
            &c,
            Method::PUT,
            &format!("/runners/{instance_id}"),
            b,
            Some(json!({"paused": true})),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let got = expect(
        call(&c, Method::GET, "/runners/all", a, None).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(got, message("403 Forbidden"));
    // Unknown ids.
    let got = expect(
        call(&c, Method::GET, "/runners/999999", a, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(got, message("404 Not found"));
    let got = expect(
        call(&c, Method::GET, "/runners/abc", a, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(got, json!({"error": "404 Not Found"}));

    // PUT: every attribute, from a form body; validation errors.
    let resp = c
        .client()
        .put(c.api(&path))
        .header("PRIVATE-TOKEN", &alice.token)
        .form(&[
            ("description", "new"),
            ("tag_list", "p,q"),
            ("run_untagged", "false"),
            ("locked", "true"),
            ("access_level", "ref_protected"),
            ("maximum_timeout", "7200"),
            ("maintenance_note", "n"),
            ("paused", "true"),
        ])
        .send()
        .await
        .unwrap();
    let d = expect(resp, StatusCode::OK).await;
    assert_eq!(d["description"], "new");
    assert_eq!(d["tag_list"], json!(["p", "q"]));
    assert_eq!(d["run_untagged"], false);
    assert_eq!(d["locked"], true);
    assert_eq!(d["access_level"], "ref_protected");
    assert_eq!(d["maximum_timeout"], 7200);
    assert_eq!(d["maintenance_note"], "n");
    assert_eq!(d["paused"], true);
    let got = expect(
        call(&c, Method::PUT, &path, a, Some(json!({}))).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(got["error"]
        .as_str()
        .unwrap()
        .ends_with("at least one parameter must be provided"));
    let got = expect(
        call(&c, Method::PUT, &path, a, Some(json!({"tag_list": []}))).await,
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
            Method::PUT,
            &path,
            a,
            Some(json!({"active": true, "paused": true})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        got,
        json!({"error": "active, paused are mutually exclusive"})
    );
    expect(
        call(
            &c,
            Method::PUT,
            &path,
            a,
            Some(json!({"maximum_timeout": 5})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    // DELETE by id, then the token is dead.
    expect(
        call(&c, Method::DELETE, &path, a, None).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    expect(
        call(&c, Method::GET, &path, a, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let got = expect(
        call(
            &c,
            Method::POST,
            "/runners/verify",
            None,
            Some(json!({"token": v["token"]})),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(got, message("403 Forbidden"));
}

#[tokio::test(flavor = "multi_thread")]
async fn runner_lists_filter_by_type_status_paused_tags_and_scope() {
    let c = TestCoordinator::spawn().await;
    let root = c.root_token.clone();
    let group = c.create_group("filters").await;
    let (online, online_token) = c
        .create_runner(json!({"runner_type": "instance_type", "tag_list": ["linux", "docker"]}))
        .await;
    let (offline, _) = c
        .create_runner(
            json!({"runner_type": "group_type", "group_id": group["id"], "tag_list": ["linux"]}),
        )
        .await;
    let (never, _) = c
        .create_runner(json!({"runner_type": "instance_type", "paused": true}))
        .await;
    expect(
        call(
            &c,
            Method::POST,
            "/runners/verify",
            None,
            Some(json!({"token": online_token, "system_id": "s_1"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    // Contact three hours ago: offline.
    c.record_contact(offline, "s_2", Duration::from_secs(3 * 3600))
        .await;

    let list = |q: &'static str| {
        let c = &c;
        let root = root.clone();
        async move {
            let (status, _, body) =
                get_with_host(c, &format!("/runners/all{q}"), &root, None).await;
            assert_eq!(status, StatusCode::OK, "{q}: {body}");
            ids(&body)
        }
    };
    assert_eq!(list("").await, [online, offline, never]);
    assert_eq!(list("?type=group_type").await, [offline]);
    assert_eq!(list("?type=instance_type").await, [online, never]);
    assert_eq!(list("?status=online").await, [online]);
    assert_eq!(list("?status=offline").await, [offline]);
    assert_eq!(list("?status=never_contacted").await, [never]);
    assert_eq!(list("?status=paused").await, [never]);
    assert_eq!(list("?paused=true").await, [never]);
    assert_eq!(list("?paused=false").await, [online, offline]);
    assert_eq!(list("?tag_list=linux").await, [online, offline]);
    assert_eq!(list("?tag_list=linux,docker").await, [online]);
    assert_eq!(list("?tag_list[]=docker&tag_list[]=linux").await, [online]);
    assert_eq!(list("?scope=shared").await, [online, never]);
    assert_eq!(list("?scope=specific").await, [offline]);
    assert_eq!(list("?scope=online").await, [online]);
    // Statuses as the REST entity reports them.
    let (_, _, all) = get_with_host(&c, "/runners/all", &root, None).await;
    let statuses: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["online", "offline", "never_contacted"]);

    for (q, body) in [
        (
            "/runners/all?type=nope",
            json!({"error": "type does not have a valid value"}),
        ),
        (
            "/runners/all?status=nope",
            json!({"error": "status does not have a valid value"}),
        ),
        (
            "/runners/all?scope=nope",
            message("Scope contains invalid value"),
        ),
        (
            "/runners?scope=shared",
            message("Scope contains invalid value"),
        ),
        (
            "/runners/all?per_page=0",
            json!({"error": "per_page does not have a valid value"}),
        ),
        ("/runners/all?paused=maybe", Value::Null),
    ] {
        let (status, _, got) = get_with_host(&c, q, &root, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
        if !body.is_null() {
            assert_eq!(got, body, "{q}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pagination_across_pages_with_links_under_the_request_host() {
    let c = TestCoordinator::spawn().await;
    let mut created = Vec::new();
    for i in 0..7 {
        let (id, _) = c
            .create_runner(json!({"runner_type": "instance_type", "description": format!("r{i}")}))
            .await;
        created.push(id);
    }
    let (status, h, page1) = get_with_host(
        &c,
        "/runners/all?per_page=3&type=instance_type",
        &c.root_token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&page1), created[..3]);
    assert_eq!(h["x-page"], "1");
    assert_eq!(h["x-per-page"], "3");
    assert_eq!(h["x-total"], "7");
    assert_eq!(h["x-total-pages"], "3");
    assert_eq!(h["x-next-page"], "2");
    assert_eq!(h["x-prev-page"], "");
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let link = h["link"].to_str().unwrap();
    let next = format!(
        "<{}/api/v4/runners/all?type=instance_type&page=2&per_page=3>; rel=\"next\"",
        c.url
    );
    assert!(link.contains(&next), "{link}");
    assert!(link.contains("page=3&per_page=3>; rel=\"last\""), "{link}");
    assert!(link.contains("page=1&per_page=3>; rel=\"first\""), "{link}");
    assert!(!link.contains("rel=\"prev\""), "{link}");

    // Follow rel="next" to the end.
    let mut seen = ids(&page1);
    let mut next_url = Some(link.to_owned());
    while let Some(link) = next_url.take() {
        let Some(url) = link
            .split(", ")
            .find(|l| l.ends_with("rel=\"next\""))
            .map(|l| {
                l.trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_owned()
            })
        else {
            break;
        };
        let resp = c
            .client()
            .get(&url)
            .header("PRIVATE-TOKEN", &c.root_token)
            .send()
            .await
            .unwrap();
        let l = resp.headers()["link"].to_str().unwrap().to_owned();
        let body: Value = resp.json().await.unwrap();
        seen.extend(ids(&body));
        next_url = Some(l);
    }
    assert_eq!(seen, created);
    let (_, h, page3) =
        get_with_host(&c, "/runners/all?per_page=3&page=3", &c.root_token, None).await;
    assert_eq!(ids(&page3), created[6..]);
    assert_eq!(h["x-next-page"], "");
    assert_eq!(h["x-prev-page"], "2");

    // Links follow the Host the client used (behind a proxy, another name).
    let (_, h, _) = get_with_host(
        &c,
        "/runners/all?per_page=3",
        &c.root_token,
        Some("gitlab.example.com:8443"),
    )
    .await;
    assert!(h["link"]
        .to_str()
        .unwrap()
        .contains("<http://gitlab.example.com:8443/api/v4/runners/all?page=2&per_page=3>"));
    // per_page is capped at 100.
    let (_, h, _) = get_with_host(&c, "/runners/all?per_page=500", &c.root_token, None).await;
    assert_eq!(h["x-per-page"], "100");
}

#[tokio::test(flavor = "multi_thread")]
async fn projects_and_groups() {
    let c = TestCoordinator::spawn().await;
    let root = Some(c.root_token.as_str());
    let alice = c.create_user("alice", false, &["api"]).await;
    let a = Some(alice.token.as_str());

    let parent = expect(
        call(
            &c,
            Method::POST,
            "/groups",
            root,
            Some(json!({"name": "Parent", "path": "parent"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let child = expect(
        call(
            &c,
            Method::POST,
            "/groups",
            root,
            Some(json!({"name": "Child", "path": "child", "parent_id": parent["id"]})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(child["full_path"], "parent/child");
    assert_eq!(child["full_name"], "Parent / Child");
    assert_eq!(child["parent_id"], parent["id"]);
    assert_eq!(child["web_url"], format!("{}/groups/parent/child", c.url));
    let got = expect(
        call(
            &c,
            Method::POST,
            "/groups",
            root,
            Some(json!({"name": "Parent", "path": "parent"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        got,
        json!({"message": {"path": ["has already been taken"]}})
    );
    let got = expect(
        call(
            &c,
            Method::POST,
            "/groups",
            root,
            Some(json!({"path": "x"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(got, json!({"error": "name is missing"}));
    // Alice may not create subgroups of root's group.
    expect(
        call(
            &c,
            Method::POST,
            "/groups",
            a,
            Some(json!({"name": "Sneaky", "parent_id": parent["id"]})),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    let g = expect(
        call(
            &c,
            Method::GET,
            &format!("/groups/{}", child["id"]),
            root,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(g["id"], child["id"]);
    let g = expect(
        call(&c, Method::GET, "/groups/parent%2Fchild", root, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(g["id"], child["id"]);
    let got = expect(
        call(&c, Method::GET, "/groups/99999", root, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(got, message("404 Group Not Found"));
    expect(
        call(
            &c,
            Method::GET,
            &format!("/groups/{}", child["id"]),
            a,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let groups = expect(
        call(&c, Method::GET, "/groups", root, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(groups.as_array().unwrap().len(), 2);
    let groups = expect(
        call(&c, Method::GET, "/groups", a, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(groups, json!([]));

    let p = expect(
        call(
            &c,
            Method::POST,
            "/projects",
            root,
            Some(json!({"name": "My App", "namespace_id": child["id"], "import_url": "https://example.com/app.git"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(p["path"], "my-app");
    assert_eq!(p["path_with_namespace"], "parent/child/my-app");
    assert_eq!(p["namespace"]["kind"], "group");
    assert_eq!(p["import_url"], "https://example.com/app.git");
    assert_eq!(p["default_branch"], "main");
    assert_eq!(p["web_url"], format!("{}/parent/child/my-app", c.url));
    let personal = expect(
        call(
            &c,
            Method::POST,
            "/projects",
            a,
            Some(json!({"path": "mine"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(personal["path_with_namespace"], "alice/mine");
    assert_eq!(personal["namespace"]["kind"], "user");
    let got = expect(
        call(
            &c,
            Method::POST,
            "/projects",
            a,
            Some(json!({"path": "mine"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        got,
        json!({"message": {"path": ["has already been taken"]}})
    );
    let got = expect(
        call(&c, Method::POST, "/projects", a, Some(json!({}))).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(
        got,
        json!({"error": "name, path are missing, at least one parameter must be provided"})
    );
    let got = expect(
        call(
            &c,
            Method::POST,
            "/projects",
            a,
            Some(json!({"name": "x", "namespace_id": child["id"]})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(got, json!({"message": {"namespace": ["is not valid"]}}));

    let got = expect(
        call(
            &c,
            Method::GET,
            &format!("/projects/{}", p["id"]),
            root,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(got["id"], p["id"]);
    let got = expect(
        call(
            &c,
            Method::GET,
            "/projects/parent%2Fchild%2Fmy-app",
            root,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(got["id"], p["id"]);
    let got = expect(
        call(&c, Method::GET, "/projects/99999", root, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(got, message("404 Project Not Found"));
    expect(
        call(&c, Method::GET, &format!("/projects/{}", p["id"]), a, None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let mine = expect(
        call(&c, Method::GET, "/projects", a, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&mine), [personal["id"].as_i64().unwrap()]);
    let all = expect(
        call(&c, Method::GET, "/projects", root, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(all.as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn project_and_group_runners() {
    let c = TestCoordinator::spawn().await;
    let root = Some(c.root_token.as_str());
    let parent = c.create_group("top").await;
    let parent_id = parent["id"].as_i64().unwrap();
    let child = expect(
        call(
            &c,
            Method::POST,
            "/groups",
            root,
            Some(json!({"name": "sub", "parent_id": parent_id})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let child_id = child["id"].as_i64().unwrap();
    let p1 = c.create_project("one", Some(child_id)).await["id"]
        .as_i64()
        .unwrap();
    let p2 = c.create_project("two", Some(child_id)).await["id"]
        .as_i64()
        .unwrap();
    let (instance, _) = c.create_instance_runner().await;
    let (top_runner, _) = c
        .create_runner(json!({"runner_type": "group_type", "group_id": parent_id}))
        .await;
    let (project_runner, _) = c
        .create_runner(json!({"runner_type": "project_type", "project_id": p1}))
        .await;
    let (locked_runner, _) = c
        .create_runner(json!({"runner_type": "project_type", "project_id": p1, "locked": true}))
        .await;

    let list = expect(
        call(
            &c,
            Method::GET,
            &format!("/projects/{p1}/runners"),
            root,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        ids(&list),
        [instance, top_runner, project_runner, locked_runner]
    );
    let list = expect(
        call(
            &c,
            Method::GET,
            &format!("/projects/{p1}/runners?type=project_type"),
            root,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&list), [project_runner, locked_runner]);
    let list = expect(
        call(
            &c,
            Method::GET,
            &format!("/projects/{p2}/runners"),
            root,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&list), [instance, top_runner]);
    let list = expect(
        call(
            &c,
            Method::GET,
            &format!("/groups/{child_id}/runners?scope=whatever"),
            root,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&list), [instance, top_runner]);
    let list = expect(
        call(
            &c,
            Method::GET,
            &format!("/groups/{child_id}/runners?type=group_type"),
            root,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&list), [top_runner]);

    // Assign.
    let assign = |project: i64, body: Value| {
        let c = &c;
        async move {
            call(
                c,
                Method::POST,
                &format!("/projects/{project}/runners"),
                root,
                Some(body),
            )
            .await
        }
    };
    let got = expect(assign(p2, json!({})).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(got, json!({"error": "runner_id is missing"}));
    let got = expect(
        assign(p2, json!({"runner_id": 99999})).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(got, message("404 Runner Not Found"));
    let got = expect(
        assign(p2, json!({"runner_id": top_runner})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(got, message("403 Forbidden - Runner is a group runner"));
    let r = expect(
        assign(p2, json!({"runner_id": project_runner})).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(r["id"], project_runner);
    expect(
        assign(p2, json!({"runner_id": project_runner})).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    // A non-admin owner may not assign a locked runner.
    let owner = c.create_user("owner", false, &["api"]).await;
    let own_group = expect(
        call(
            &c,
            Method::POST,
            "/groups",
            Some(&owner.token),
            Some(json!({"name": "owned"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let own_project = expect(
        call(
            &c,
            Method::POST,
            "/projects",
            Some(&owner.token),
            Some(json!({"name": "p", "namespace_id": own_group["id"]})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let got = expect(
        call(
            &c,
            Method::POST,
            &format!("/projects/{}/runners", own_project["id"]),
            Some(&owner.token),
            Some(json!({"runner_id": locked_runner})),
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(got, message("403 Forbidden - Runner is locked"));
    // Others' projects: not found.
    expect(
        call(
            &c,
            Method::GET,
            &format!("/projects/{p1}/runners"),
            Some(&owner.token),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect(
        call(
            &c,
            Method::GET,
            &format!("/groups/{child_id}/runners"),
            Some(&owner.token),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // A runner on two projects cannot be deleted by a non-admin owner of one.
    let d = expect(
        call(
            &c,
            Method::GET,
            &format!("/runners/{project_runner}"),
            root,
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(d["projects"].as_array().unwrap().len(), 2);

    // Unassign.
    let got = expect(
        call(
            &c,
            Method::DELETE,
            &format!("/projects/{p2}/runners/{locked_runner}"),
            root,
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(got, message("404 Runner Not Found"));
    expect(
        call(
            &c,
            Method::DELETE,
            &format!("/projects/{p2}/runners/{project_runner}"),
            root,
            None,
        )
        .await,
        StatusCode::NO_CONTENT,
    )
    .await;
    let got = expect(
        call(
            &c,
            Method::DELETE,
            &format!("/projects/{p1}/runners/{project_runner}"),
            root,
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        got,
        message("403 Forbidden - Only one project associated with the runner. Please remove the runner instead")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_runner_shared_by_projects_needs_an_admin() {
    let c = TestCoordinator::spawn().await;
    let owner = c.create_user("owner", false, &["api"]).await;
    let o = Some(owner.token.as_str());
    let mut projects = Vec::new();
    for name in ["a", "b"] {
        let p = expect(
            call(
                &c,
                Method::POST,
                "/projects",
                o,
                Some(json!({"name": name})),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        projects.push(p["id"].as_i64().unwrap());
    }
    let v = expect(
        call(
            &c,
            Method::POST,
            "/user/runners",
            o,
            Some(json!({"runner_type": "project_type", "project_id": projects[0]})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = v["id"].as_i64().unwrap();
    expect(
        call(
            &c,
            Method::POST,
            &format!("/projects/{}/runners", projects[1]),
            o,
            Some(json!({"runner_id": id})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let owned = expect(
        call(&c, Method::GET, "/runners", o, None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&owned), [id]);
    let got = expect(
        call(&c, Method::DELETE, &format!("/runners/{id}"), o, None).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        got,
        message("403 Forbidden - Runner associated with more than one project")
    );
    expect(
        call(
            &c,
            Method::DELETE,
            &format!("/runners/{id}"),
            Some(&c.root_token),
            None,
        )
        .await,
        StatusCode::NO_CONTENT,
    )
    .await;
}

/// The test coordinator runs on its own runtime: a single-threaded test may
/// block on I/O against it (as tests running the `forerunner` binary do).
#[tokio::test]
async fn test_coordinator_survives_blocking_tests() {
    use std::io::{Read as _, Write as _};

    let c = TestCoordinator::spawn().await;
    let addr = c.url.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /-/liveness HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    c.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_registrations_all_succeed() {
    let c = TestCoordinator::spawn().await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let client = c.client();
        let url = c.api(if i % 2 == 0 {
            "/user/runners"
        } else {
            "/runners"
        });
        let body = if i % 2 == 0 {
            json!({"runner_type": "instance_type", "description": format!("new {i}")})
        } else {
            json!({"token": c.registration_token, "description": format!("legacy {i}")})
        };
        let pat = c.root_token.clone();
        let verify_url = c.api("/runners/verify");
        tasks.push(tokio::spawn(async move {
            let resp = client
                .post(url)
                .header("PRIVATE-TOKEN", pat)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::CREATED);
            let v: Value = resp.json().await.unwrap();
            let token = v["token"].as_str().unwrap().to_owned();
            let verify = client
                .post(verify_url)
                .json(&json!({"token": token, "system_id": format!("s_{i:012}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(verify.status(), StatusCode::OK);
            v["id"].as_i64().unwrap()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 24);
    let (_, h, _) = get_with_host(&c, "/runners/all?status=online", &c.root_token, None).await;
    assert_eq!(h["x-total"], "24");
}

/// Every endpoint refuses every token of the wrong kind with GitLab's body:
/// runner-token endpoints answer 403, personal-access-token endpoints 401,
/// legacy registration `403 … invalid token supplied`.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_token_kinds_on_every_endpoint() {
    let c = TestCoordinator::spawn().await;
    let group = c.create_group("kinds").await;
    let gid = group["id"].as_i64().unwrap();
    let pid = c.create_project("kinds", Some(gid)).await["id"]
        .as_i64()
        .unwrap();
    let (rid, runner_token) = c.create_instance_runner().await;
    let legacy = expect(
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
    let legacy_token = legacy["token"].as_str().unwrap().to_owned();
    let group_reg = c.group_registration_token(gid).await;
    let job_token = "glcbt-64_notajobtokenyet".to_owned();

    // Runner-token endpoints: anything but a live runner token is 403.
    let not_runner_tokens = [
        c.root_token.clone(),
        c.registration_token.clone(),
        group_reg.clone(),
        job_token.clone(),
        "glrt-t1_deadbeefdeadbeefdead".to_owned(),
    ];
    for token in &not_runner_tokens {
        for (method, path, body) in [
            (
                Method::POST,
                "/runners/verify",
                json!({"token": token, "system_id": "s_1"}),
            ),
            (Method::DELETE, "/runners", json!({"token": token})),
            (
                Method::DELETE,
                "/runners/managers",
                json!({"token": token, "system_id": "s_1"}),
            ),
            (
                Method::POST,
                "/runners/reset_authentication_token",
                json!({"token": token}),
            ),
        ] {
            let got = expect(
                call(&c, method.clone(), path, None, Some(body)).await,
                StatusCode::FORBIDDEN,
            )
            .await;
            assert_eq!(
                got,
                message("403 Forbidden"),
                "{method} {path} with {token}"
            );
        }
    }

    // Legacy registration: anything but a registration token is 403.
    for token in [&c.root_token, &runner_token, &legacy_token, &job_token] {
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

    // PAT endpoints: runner, registration and job tokens are not PATs.
    let pat_endpoints = [
        (Method::GET, "/user".to_owned()),
        (Method::GET, "/users".to_owned()),
        (Method::POST, "/users".to_owned()),
        (Method::GET, "/users/1".to_owned()),
        (Method::POST, "/users/1/personal_access_tokens".to_owned()),
        (Method::PUT, format!("/projects/{pid}")),
        (Method::GET, "/version".to_owned()),
        (Method::GET, "/application/settings".to_owned()),
        (Method::PUT, "/application/settings".to_owned()),
        (Method::POST, "/user/runners".to_owned()),
        (Method::GET, "/runners".to_owned()),
        (Method::GET, "/runners/all".to_owned()),
        (Method::GET, format!("/runners/{rid}")),
        (Method::PUT, format!("/runners/{rid}")),
        (Method::DELETE, format!("/runners/{rid}")),
        (Method::GET, format!("/runners/{rid}/managers")),
        (
            Method::POST,
            format!("/runners/{rid}/reset_authentication_token"),
        ),
        (Method::POST, "/runners/reset_registration_token".to_owned()),
        (Method::GET, "/projects".to_owned()),
        (Method::POST, "/projects".to_owned()),
        (Method::GET, format!("/projects/{pid}")),
        (Method::GET, format!("/projects/{pid}/runners")),
        (Method::POST, format!("/projects/{pid}/runners")),
        (Method::DELETE, format!("/projects/{pid}/runners/{rid}")),
        (
            Method::POST,
            format!("/projects/{pid}/runners/reset_registration_token"),
        ),
        (Method::GET, "/groups".to_owned()),
        (Method::POST, "/groups".to_owned()),
        (Method::GET, format!("/groups/{gid}")),
        (Method::GET, format!("/groups/{gid}/runners")),
        (
            Method::POST,
            format!("/groups/{gid}/runners/reset_registration_token"),
        ),
    ];
    for token in [
        &runner_token,
        &legacy_token,
        &c.registration_token,
        &group_reg,
        &job_token,
    ] {
        for (method, path) in &pat_endpoints {
            let got = expect(
                call(&c, method.clone(), path, Some(token), Some(json!({}))).await,
                StatusCode::UNAUTHORIZED,
            )
            .await;
            assert_eq!(
                got,
                message("401 Unauthorized"),
                "{method} {path} with {token}"
            );
            let resp = c
                .client()
                .request(method.clone(), c.api(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} bearer"
            );
        }
    }
    // Nothing above changed the runner.
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

/// GitLab's documentation uses `curl --form` (multipart) for the runner
/// endpoints; those parameters count like any other.
#[tokio::test(flavor = "multi_thread")]
async fn multipart_form_parameters_as_in_gitlab_docs() {
    use reqwest::multipart::Form;

    let c = TestCoordinator::spawn().await;
    let form = Form::new()
        .text("token", c.registration_token.clone())
        .text("description", "test-1-20150125-test")
        .text("tag_list", "ruby,mysql,tag1,tag2");
    let resp = c
        .client()
        .post(c.api("/runners"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let v = expect(resp, StatusCode::CREATED).await;
    let token = v["token"].as_str().unwrap().to_owned();
    let d = expect(
        call(
            &c,
            Method::GET,
            &format!("/runners/{}", v["id"]),
            Some(&c.root_token),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(d["description"], "test-1-20150125-test");
    assert_eq!(d["tag_list"], json!(["mysql", "ruby", "tag1", "tag2"]));
    let resp = c
        .client()
        .post(c.api("/runners/verify"))
        .multipart(Form::new().text("token", token.clone()))
        .send()
        .await
        .unwrap();
    expect(resp, StatusCode::OK).await;
    let resp = c
        .client()
        .delete(c.api("/runners"))
        .multipart(Form::new().text("token", token.clone()))
        .send()
        .await
        .unwrap();
    expect(resp, StatusCode::NO_CONTENT).await;
    // A broken multipart body is a 400.
    let resp = c
        .client()
        .post(c.api("/runners/verify"))
        .header("content-type", "multipart/form-data; boundary=x")
        .body("--x\r\nbroken")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn administrators_create_users_and_tokens() {
    let c = TestCoordinator::spawn().await;
    let root = Some(c.root_token.as_str());
    let u = expect(
        call(
            &c,
            Method::POST,
            "/users",
            root,
            Some(json!({"username": "carol", "name": "Carol", "email": "c@example.com", "password": "ignored"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(u["username"], "carol");
    assert_eq!(u["is_admin"], false);
    let uid = u["id"].as_i64().unwrap();
    let got = expect(
        call(
            &c,
            Method::POST,
            "/users",
            root,
            Some(json!({"username": "carol"})),
        )
        .await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(got, message("Username has already been taken"));
    let got = expect(
        call(&c, Method::POST, "/users", root, Some(json!({"name": "x"}))).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(got, json!({"error": "username is missing"}));

    let t = expect(
        call(
            &c,
            Method::POST,
            &format!("/users/{uid}/personal_access_tokens"),
            root,
            Some(json!({"name": "ci", "scopes": ["api", "create_runner"], "expires_at": "2999-12-31"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let token = t["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("glpat-"));
    assert_eq!(t["scopes"], json!(["api", "create_runner"]));
    assert_eq!(t["expires_at"], "2999-12-31");
    assert_eq!(t["active"], true);
    let me = expect(
        call(&c, Method::GET, "/user", Some(&token), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(me["id"], uid);
    let got = expect(
        call(
            &c,
            Method::GET,
            &format!("/users/{uid}"),
            Some(&token),
            None,
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(got["username"], "carol");
    let got = expect(
        call(&c, Method::GET, "/users/1", Some(&token), None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(got, message("404 User Not Found"));
    // Only administrators create users and tokens.
    for (path, body) in [
        ("/users".to_owned(), json!({"username": "mallory"})),
        (
            format!("/users/{uid}/personal_access_tokens"),
            json!({"name": "x", "scopes": ["api"]}),
        ),
    ] {
        let got = expect(
            call(&c, Method::POST, &path, Some(&token), Some(body)).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(got, message("403 Forbidden"));
    }
    for (body, error) in [
        (json!({"scopes": ["api"]}), "name is missing"),
        (json!({"name": "x"}), "scopes is missing"),
        (
            json!({"name": "x", "scopes": ["nope"]}),
            "scopes does not have a valid value",
        ),
        (
            json!({"name": "x", "scopes": "api", "expires_at": "soon"}),
            "expires_at is invalid",
        ),
    ] {
        let got = expect(
            call(
                &c,
                Method::POST,
                &format!("/users/{uid}/personal_access_tokens"),
                root,
                Some(body),
            )
            .await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(got, json!({ "error": error }));
    }
    expect(
        call(
            &c,
            Method::POST,
            "/users/9999/personal_access_tokens",
            root,
            Some(json!({"name": "x", "scopes": ["api"]})),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn project_settings_decide_which_runners_it_may_use() {
    let c = TestCoordinator::spawn().await;
    let root = Some(c.root_token.as_str());
    let group = c.create_group("settings").await;
    let gid = group["id"].as_i64().unwrap();
    let pid = c.create_project("app", Some(gid)).await["id"]
        .as_i64()
        .unwrap();
    let (instance, _) = c.create_instance_runner().await;
    let (group_runner, _) = c
        .create_runner(json!({"runner_type": "group_type", "group_id": gid}))
        .await;
    assert_eq!(project_runner_ids(&c, pid).await, [instance, group_runner]);
    let p = expect(
        call(
            &c,
            Method::PUT,
            &format!("/projects/{pid}"),
            root,
            Some(json!({"shared_runners_enabled": false, "import_url": "/srv/git/app.git"})),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(p["shared_runners_enabled"], false);
    assert_eq!(p["import_url"], "/srv/git/app.git");
    assert_eq!(project_runner_ids(&c, pid).await, [group_runner]);
    let resp = c
        .client()
        .put(c.api(&format!("/projects/{pid}")))
        .header("PRIVATE-TOKEN", &c.root_token)
        .form(&[("group_runners_enabled", "false")])
        .send()
        .await
        .unwrap();
    expect(resp, StatusCode::OK).await;
    assert_eq!(project_runner_ids(&c, pid).await, Vec::<i64>::new());
    let stranger = c.create_user("stranger", false, &["api"]).await;
    expect(
        call(
            &c,
            Method::PUT,
            &format!("/projects/{pid}"),
            Some(&stranger.token),
            Some(json!({"description": "x"})),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect(
        call(
            &c,
            Method::PUT,
            "/projects/9999",
            root,
            Some(json!({"description": "x"})),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    expect(
        call(
            &c,
            Method::PUT,
            &format!("/projects/{pid}"),
            root,
            Some(json!({"visibility": "secret"})),
        )
        .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

async fn project_runner_ids(c: &TestCoordinator, project: i64) -> Vec<i64> {
    let path = format!("/projects/{project}/runners");
    ids(&expect(
        call(c, Method::GET, &path, Some(&c.root_token), None).await,
        StatusCode::OK,
    )
    .await)
}

/// Malformed or ill-typed parameters on every endpoint answer 4xx, never 5xx.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_input_never_causes_a_server_error() {
    let c = TestCoordinator::spawn().await;
    let group = c.create_group("fuzz").await;
    let gid = group["id"].as_i64().unwrap();
    let pid = c.create_project("fuzz", Some(gid)).await["id"]
        .as_i64()
        .unwrap();
    let (rid, runner_token) = c.create_instance_runner().await;
    let endpoints = [
        (Method::POST, "/runners".to_owned()),
        (Method::DELETE, "/runners".to_owned()),
        (Method::POST, "/runners/verify".to_owned()),
        (Method::DELETE, "/runners/managers".to_owned()),
        (
            Method::POST,
            "/runners/reset_authentication_token".to_owned(),
        ),
        (Method::POST, "/user/runners".to_owned()),
        (Method::GET, "/runners".to_owned()),
        (Method::GET, "/runners/all".to_owned()),
        (Method::PUT, format!("/runners/{rid}")),
        (Method::PUT, "/application/settings".to_owned()),
        (Method::POST, "/projects".to_owned()),
        (Method::PUT, format!("/projects/{pid}")),
        (Method::GET, format!("/projects/{pid}/runners")),
        (Method::POST, format!("/projects/{pid}/runners")),
        (Method::POST, "/groups".to_owned()),
        (Method::GET, format!("/groups/{gid}/runners")),
        (Method::GET, "/users".to_owned()),
        (Method::POST, "/users".to_owned()),
        (Method::POST, "/users/1/personal_access_tokens".to_owned()),
    ];
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"{".to_vec()),
        ("application/json", b"[1,2]".to_vec()),
        ("application/json", b"\"text\"".to_vec()),
        ("application/json", b"null".to_vec()),
        (
            "application/json",
            b"{\"token\": {}, \"system_id\": []}".to_vec(),
        ),
        (
            "application/json",
            b"{\"tag_list\": 5, \"paused\": \"maybe\"}".to_vec(),
        ),
        (
            "application/json",
            b"{\"runner_type\": [], \"group_id\": \"x\"}".to_vec(),
        ),
        ("application/json", b"{\"maximum_timeout\": 1e400}".to_vec()),
        (
            "application/json",
            b"{\"maximum_timeout\": 99999999999999999999999}".to_vec(),
        ),
        (
            "application/json",
            b"{\"page\": -1, \"per_page\": \"many\"}".to_vec(),
        ),
        ("application/json", vec![0xff, 0xfe, 0x00, 0x7b]),
        (
            "application/x-www-form-urlencoded",
            b"%zz=%%&token".to_vec(),
        ),
        ("application/x-www-form-urlencoded", vec![0xff, 0x3d, 0xfe]),
        ("multipart/form-data", b"--nope".to_vec()),
        ("text/plain", b"token=whatever".to_vec()),
    ];
    for (method, path) in &endpoints {
        for (content_type, body) in &bodies {
            for query in [
                "",
                "?page=0",
                "?per_page=abc&tag_list[]=",
                "?token=&scope=%ff",
            ] {
                let resp = c
                    .client()
                    .request(method.clone(), c.api(&format!("{path}{query}")))
                    .header("PRIVATE-TOKEN", &c.root_token)
                    .header("content-type", *content_type)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let status = resp.status();
                assert!(
                    status.is_client_error() || status.is_success(),
                    "{method} {path}{query} with {content_type} {:?}: {status}",
                    String::from_utf8_lossy(body)
                );
            }
        }
    }
    // The coordinator is still healthy and the runner untouched.
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
