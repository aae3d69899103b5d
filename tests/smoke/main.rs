#[path = "../common/mod.rs"]
mod common;

use common::*;
use serde_json::json;

#[test]
fn a_secret_written_is_read_back_after_a_restart() {
    let mut server = Server::start();
    let admin = server.admin();
    let (app_id, _) = create_app(&admin, "shop");
    let path = secrets_path(&app_id, "Development");
    let (status, created) = admin.post(&path, json!({"secrets": [{"key": "db_url", "value": "pg://x"}]}));
    assert_eq!(status, 200, "{created}");
    server.restart();
    let (status, listed) = server.admin().get(&path);
    assert_eq!(status, 200);
    assert_eq!(listed, created);
}
