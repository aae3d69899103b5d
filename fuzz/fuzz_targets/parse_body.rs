//! The request body parsers of `POST`, `PUT` and `DELETE /v1/secrets/` never panic on
//! any bytes, and every refusal is a 4xx with a message.
#![no_main]

use coffer_server::requests::{parse_create_batch, parse_delete_ids, parse_update_batch};
use coffer_server::ApiError;
use libfuzzer_sys::fuzz_target;

fn check_refusal(err: &ApiError) {
    assert!(err.status.is_client_error(), "{err}");
    assert!(!err.message.is_empty(), "{err}");
}

fuzz_target!(|data: &[u8]| {
    if let Err(err) = parse_create_batch(data) {
        check_refusal(&err);
    }
    if let Err(err) = parse_update_batch(data) {
        check_refusal(&err);
    }
    if let Err(err) = parse_delete_ids(data) {
        check_refusal(&err);
    }
});
