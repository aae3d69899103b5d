//! A full HTTP round trip in-process: request parsing, auth, routing, the store, JSON,
//! through the same `create_app` the server runs (no socket, so the numbers are the
//! server's own work). Beside it, `/health` as the framework's floor.

use std::sync::Arc;

use actix_web::{test, web};
use coffer::server::{create_app, AppState, ServerConfig};
use coffer::store::{
    Actor, NewApp, NewSecret, NewToken, Permissions, Store, StoreConfig, TokenKind,
};
use criterion::{criterion_group, criterion_main, Criterion};

fn http_round_trip(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(Store::open(&StoreConfig::new(dir.path())).expect("store"));
    let me = Actor::embedded();
    let (app, envs) = store
        .create_app(
            &me,
            NewApp {
                name: "bench".into(),
                ..Default::default()
            },
        )
        .expect("app");
    let secrets = (0..1000)
        .map(|i| NewSecret {
            key: format!("KEY_{i:04}"),
            value: "v".repeat(64),
            ..Default::default()
        })
        .collect();
    store
        .create_secrets(&me, envs[0].id, secrets)
        .expect("secrets");
    let (_, reader) = store
        .create_token(
            &me,
            NewToken {
                name: "reader".into(),
                kind: TokenKind::Service,
                app_id: Some(app.id),
                environments: vec!["Development".into()],
                permissions: Permissions {
                    read: true,
                    ..Default::default()
                },
                expires_at: None,
                allowed_ips: Vec::new(),
            },
        )
        .expect("token");
    let state = web::Data::new(AppState::new(store, ServerConfig::default()));
    let runtime = actix_web::rt::System::new();
    let service = runtime.block_on(test::init_service(create_app(state)));
    let read_uri = format!(
        "/v1/secrets/?app_id={}&env=Development&key=KEY_0500",
        app.id
    );
    let auth = format!("Bearer Service {}", &*reader.token);

    let mut group = c.benchmark_group("http_in_process");
    group.bench_function("read one secret by key", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let request = test::TestRequest::get()
                    .uri(&read_uri)
                    .insert_header(("Authorization", auth.as_str()))
                    .peer_addr("127.0.0.1:9999".parse().expect("addr"))
                    .to_request();
                let response = test::call_service(&service, request).await;
                assert!(response.status().is_success());
                test::read_body(response).await
            })
        })
    });
    group.bench_function("health", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let request = test::TestRequest::get().uri("/health").to_request();
                let response = test::call_service(&service, request).await;
                assert!(response.status().is_success());
                test::read_body(response).await
            })
        })
    });
    group.finish();
}

criterion_group!(benches, http_round_trip);
criterion_main!(benches);
