//! The web console: static files under `/console/`, embedded in the binary.
//!
//! The console is plain ES modules and one stylesheet (`crates/coffer-server/console/`),
//! so nothing is built: the files are embedded as they are in the repository. Each is
//! gzip-compressed once, on first use, and kept with its ETag. These routes are a
//! scope of their own, with no middleware added to the API's routes; every answer
//! carries a strict Content-Security-Policy and is revalidated by ETag.
//!
//! The app-wide trailing-slash normalisation makes `/console` and `/console/` the same
//! request here, so both answer the page itself (a redirect from one to the other would
//! loop); the page names its files by absolute path, so it works at either address.

use std::io::Write;
use std::sync::LazyLock;

use actix_web::http::header::{
    self, AcceptEncoding, ContentEncoding, Encoding, EntityTag, Header, IfNoneMatch,
};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::routes::ops::only;

/// The console's Content-Security-Policy: its own files and the API on the same origin,
/// nothing inline, nothing framed, no form posted anywhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Browsers revalidate every file by its ETag: the names carry no version, so a
/// long max-age would keep an old console after an upgrade.
const CACHE_CONTROL: &str = "no-cache";

/// One embedded file, as served.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    identity: &'static [u8],
    /// Shared, so each answer takes a reference rather than a copy.
    gzip: web::Bytes,
    /// The ETag of the uncompressed body; the gzip body's is this with `-gzip`.
    tag: String,
}

macro_rules! embedded {
    ($($name:literal => $content_type:literal,)*) => {
        [$(($name, $content_type, include_bytes!(concat!("../../console/", $name)) as &[u8]),)*]
    };
}

/// Every file of the console, by the name it is served under.
static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    embedded! {
        "index.html" => "text/html; charset=utf-8",
        "style.css" => "text/css; charset=utf-8",
        "app.js" => "text/javascript; charset=utf-8",
        "api.js" => "text/javascript; charset=utf-8",
        "dom.js" => "text/javascript; charset=utf-8",
        "session.js" => "text/javascript; charset=utf-8",
        "dotenv.js" => "text/javascript; charset=utf-8",
        "live.js" => "text/javascript; charset=utf-8",
        "deleted.js" => "text/javascript; charset=utf-8",
        "view-signin.js" => "text/javascript; charset=utf-8",
        "view-apps.js" => "text/javascript; charset=utf-8",
        "view-secrets.js" => "text/javascript; charset=utf-8",
        "view-compare.js" => "text/javascript; charset=utf-8",
        "view-history.js" => "text/javascript; charset=utf-8",
        "view-audit.js" => "text/javascript; charset=utf-8",
        "view-tokens.js" => "text/javascript; charset=utf-8",
        "favicon.svg" => "image/svg+xml",
    }
    .into_iter()
    .map(|(name, content_type, identity)| Asset {
        name,
        content_type,
        identity,
        gzip: web::Bytes::from(gzip(identity)),
        tag: hex::encode(&Sha256::digest(identity)[..16]),
    })
    .collect()
});

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    // Writing to a Vec cannot fail.
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// Registers `/console` (the page) and `/console/{file}`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/console")
            .route(web::get().to(index))
            .route(web::head().to(index))
            .default_service(only("GET, HEAD")),
    )
    .service(
        web::resource("/console/{file}")
            .route(web::get().to(file))
            .route(web::head().to(file))
            .default_service(only("GET, HEAD")),
    );
}

async fn index(req: HttpRequest) -> HttpResponse {
    serve(&req, "index.html")
}

async fn file(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    serve(&req, &name)
}

fn serve(req: &HttpRequest, name: &str) -> HttpResponse {
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == name) else {
        let mut response = ApiError::route_not_found().error_response();
        secure(&mut response);
        return response;
    };
    let gzip = wants_gzip(req);
    let tag = if gzip {
        EntityTag::new_strong(format!("{}-gzip", asset.tag))
    } else {
        EntityTag::new_strong(asset.tag.clone())
    };
    let not_modified = unchanged(req, asset);
    let mut builder = HttpResponse::build(if not_modified {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    });
    builder
        .insert_header(header::ETag(tag))
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        .insert_header((header::VARY, "Accept-Encoding"));
    let mut response = if not_modified {
        builder.finish()
    } else {
        builder.insert_header((header::CONTENT_TYPE, asset.content_type));
        if gzip {
            // Marked as already encoded, so no layer compresses it again.
            builder.insert_header(ContentEncoding::Gzip);
            builder.body(asset.gzip.clone())
        } else {
            builder.body(asset.identity)
        }
    };
    secure(&mut response);
    response
}

/// Whether the client prefers gzip to the plain body.
fn wants_gzip(req: &HttpRequest) -> bool {
    let Ok(accepted) = AcceptEncoding::parse(req) else {
        return false;
    };
    let supported = [Encoding::gzip(), Encoding::identity()];
    accepted.negotiate(supported.iter()) == Some(Encoding::gzip())
}

/// Whether `If-None-Match` names either form of this file's current body.
fn unchanged(req: &HttpRequest, asset: &Asset) -> bool {
    match IfNoneMatch::parse(req) {
        Ok(IfNoneMatch::Any) => true,
        Ok(IfNoneMatch::Items(tags)) => tags.iter().any(|tag| {
            let tag = tag.tag();
            tag == asset.tag || tag.strip_suffix("-gzip") == Some(asset.tag.as_str())
        }),
        Err(_) => false,
    }
}

/// The headers every console answer carries.
fn secure(response: &mut HttpResponse) {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CROSS_ORIGIN_OPENER_POLICY, "same-origin"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_and_compresses_back_to_itself() {
        use std::io::Read;
        assert!(ASSETS.iter().any(|asset| asset.name == "index.html"));
        for asset in ASSETS.iter() {
            assert!(!asset.identity.is_empty(), "{}", asset.name);
            let mut unzipped = Vec::new();
            flate2::read::GzDecoder::new(&asset.gzip[..])
                .read_to_end(&mut unzipped)
                .unwrap();
            assert_eq!(unzipped, asset.identity, "{}", asset.name);
        }
    }

    fn text_of(name: &str) -> &'static str {
        let asset = ASSETS.iter().find(|asset| asset.name == name).unwrap();
        std::str::from_utf8(asset.identity).unwrap()
    }

    #[test]
    fn the_page_names_only_embedded_files() {
        for reference in text_of("index.html").split("\"/console/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                ASSETS.iter().any(|asset| asset.name == name),
                "index.html names {name}, which is not embedded"
            );
        }
    }

    #[test]
    fn every_module_imported_is_embedded() {
        for script in ASSETS.iter().filter(|asset| asset.name.ends_with(".js")) {
            for import in text_of(script.name).split("from './").skip(1) {
                let name = import.split('\'').next().unwrap();
                assert!(
                    ASSETS.iter().any(|asset| asset.name == name),
                    "{} imports {name}, which is not embedded",
                    script.name
                );
            }
        }
    }

    #[test]
    fn every_file_of_the_console_folder_is_embedded() {
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/console");
        for entry in std::fs::read_dir(folder).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                ASSETS.iter().any(|asset| asset.name == name),
                "{name} is in console/ but not embedded"
            );
        }
    }
}
