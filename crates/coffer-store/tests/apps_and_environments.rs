//! Apps and environments (API.md, "Apps" and "Environments"): name rules, default
//! environments, lookup by name or id, and cascading deletes.

mod common;

use coffer_store::{
    AppUpdate, EnvType, NewApp, NewToken, Permissions, SecretFilter, StoreError, TokenKind,
    DEFAULT_ENVIRONMENTS,
};
use common::{me, secret, TestStore};
use uuid::Uuid;

fn new_app(name: &str) -> NewApp {
    NewApp {
        name: name.into(),
        ..Default::default()
    }
}

// --- apps ------------------------------------------------------------------------------

#[test]
fn a_new_app_gets_development_staging_and_production() {
    let s = TestStore::new();
    let (app, envs) = s.create_app(&me(), new_app("shop")).unwrap();
    let got: Vec<(&str, EnvType, u32, Uuid)> = envs
        .iter()
        .map(|e| (e.name.as_str(), e.env_type, e.index, e.app_id))
        .collect();
    assert_eq!(
        got,
        vec![
            ("Development", EnvType::Dev, 0, app.id),
            ("Staging", EnvType::Staging, 1, app.id),
            ("Production", EnvType::Prod, 2, app.id),
        ]
    );
    assert_eq!(
        DEFAULT_ENVIRONMENTS,
        ["Development", "Staging", "Production"]
    );
    let types: Vec<&str> = envs.iter().map(|e| e.env_type.as_str()).collect();
    assert_eq!(types, ["dev", "staging", "prod"]);
    assert_eq!(s.list_environments(app.id).unwrap(), envs);
}

#[test]
fn an_app_may_name_its_own_environments() {
    let s = TestStore::new();
    let (app, envs) = s
        .create_app(
            &me(),
            NewApp {
                environments: Some(vec!["qa".into(), "production".into()]),
                ..new_app("shop")
            },
        )
        .unwrap();
    let got: Vec<(&str, EnvType)> = envs.iter().map(|e| (e.name.as_str(), e.env_type)).collect();
    // As Phase: environments named at creation are custom ones, whatever their names.
    assert_eq!(
        got,
        vec![("qa", EnvType::Custom), ("production", EnvType::Custom)]
    );
    assert_eq!(s.list_environments(app.id).unwrap(), envs);
}

#[test]
fn an_app_with_a_bad_or_repeated_environment_name_is_not_created() {
    let s = TestStore::new();
    let with_envs = |name: &str, envs: &[&str]| NewApp {
        environments: Some(envs.iter().map(|e| e.to_string()).collect()),
        ..new_app(name)
    };
    let err = s
        .create_app(&me(), with_envs("a", &["dev", "no spaces"]))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::InvalidEnvironmentName(n) if n == "no spaces"),
        "{err:?}"
    );
    let err = s
        .create_app(&me(), with_envs("b", &["dev", "DEV"]))
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::EnvironmentNameTaken(n) if n == "DEV"),
        "{err:?}"
    );
    assert!(s.list_apps().unwrap().is_empty());
}

#[test]
fn app_names_are_unique_in_any_case() {
    let s = TestStore::new();
    s.create_app(&me(), new_app("Shop")).unwrap();
    let err = s.create_app(&me(), new_app("sHOP")).unwrap_err();
    assert!(
        matches!(&err, StoreError::AppNameTaken(n) if n == "sHOP"),
        "{err:?}"
    );
    assert_eq!(s.list_apps().unwrap().len(), 1);
}

#[test]
fn renaming_an_app_onto_another_name_is_refused() {
    let s = TestStore::new();
    let (shop, _) = s.create_app(&me(), new_app("shop")).unwrap();
    s.create_app(&me(), new_app("blog")).unwrap();
    let rename = |name: &str| {
        s.update_app(
            &me(),
            shop.id,
            AppUpdate {
                name: Some(name.into()),
                ..Default::default()
            },
        )
    };
    assert!(matches!(rename("BLOG"), Err(StoreError::AppNameTaken(n)) if n == "BLOG"));
    // Its own name in another case is fine, and the old name is freed by a rename.
    assert_eq!(rename("SHOP").unwrap().name, "SHOP");
    assert_eq!(rename("store").unwrap().name, "store");
    s.create_app(&me(), new_app("shop")).unwrap();
}

#[test]
fn app_names_are_1_to_64_characters() {
    let s = TestStore::new();
    // Names are kept as given (characters, not bytes, are counted).
    assert_eq!(
        s.create_app(&me(), new_app("my shop ")).unwrap().0.name,
        "my shop "
    );
    assert_eq!(
        s.create_app(&me(), new_app(&"é".repeat(64)))
            .unwrap()
            .0
            .name,
        "é".repeat(64)
    );
    // Blank, too long, with control characters, or starting with whitespace: refused.
    for bad in ["", "   ", &"x".repeat(65), "tab\tname", " padded"] {
        let err = s.create_app(&me(), new_app(bad)).unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidAppName(n) if n == bad),
            "{bad:?}: {err:?}"
        );
    }
}

#[test]
fn an_app_update_changes_only_what_it_names() {
    let s = TestStore::new();
    let (app, _) = s
        .create_app(
            &me(),
            NewApp {
                description: "old".into(),
                ..new_app("shop")
            },
        )
        .unwrap();
    let got = s
        .update_app(
            &me(),
            app.id,
            AppUpdate {
                description: Some("new".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        (got.name.as_str(), got.description.as_str()),
        ("shop", "new")
    );
    assert_eq!(s.get_app(app.id).unwrap(), got);
    let unknown = Uuid::new_v4();
    assert!(matches!(
        s.update_app(&me(), unknown, AppUpdate::default()),
        Err(StoreError::AppNotFound(id)) if id == unknown
    ));
}

#[test]
fn apps_are_listed_by_name() {
    let s = TestStore::new();
    for name in ["zeta", "Alpha", "beta"] {
        s.create_app(&me(), new_app(name)).unwrap();
    }
    let names: Vec<String> = s.list_apps().unwrap().into_iter().map(|a| a.name).collect();
    assert_eq!(names, ["Alpha", "beta", "zeta"]);
}

#[test]
fn deleting_an_app_removes_its_environments_secrets_history_and_tokens() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let (other_app, other_envs) = s.app("blog");
    let secret_id = s
        .create_secrets(&me(), envs[0].id, vec![secret("K", "v")])
        .unwrap()[0]
        .id;
    let kept_id = s
        .create_secrets(&me(), other_envs[0].id, vec![secret("K", "v")])
        .unwrap()[0]
        .id;
    let service = |app_id: Uuid| NewToken {
        name: "ci".into(),
        kind: TokenKind::Service,
        app_id: Some(app_id),
        environments: vec!["development".into()],
        permissions: Permissions::ALL,
        expires_at: None,
        allowed_ips: vec![],
    };
    let (scoped, scoped_secret) = s.create_token(&me(), service(app)).unwrap();
    let (other, other_secret) = s.create_token(&me(), service(other_app)).unwrap();
    // Authenticated once, so a cached token would survive if the cache were stale.
    assert!(s.authenticate(&scoped_secret).unwrap().is_some());

    s.delete_app(&me(), app).unwrap();

    assert!(matches!(s.get_app(app), Err(StoreError::AppNotFound(id)) if id == app));
    assert!(matches!(
        s.find_environment(app, "development"),
        Err(StoreError::AppNotFound(_))
    ));
    assert!(s.list_environments(app).unwrap().is_empty());
    for env in &envs {
        assert!(matches!(
            s.get_environment(env.id),
            Err(StoreError::EnvironmentIdNotFound(id)) if id == env.id
        ));
    }
    assert!(s
        .list_secrets(envs[0].id, &SecretFilter::default())
        .unwrap()
        .is_empty());
    assert!(matches!(
        s.get_secret(envs[0].id, secret_id),
        Err(StoreError::SecretNotFound(_))
    ));
    assert!(matches!(
        s.secret_history(envs[0].id, secret_id),
        Err(StoreError::SecretNotFound(_))
    ));
    assert!(matches!(
        s.get_token(scoped.id),
        Err(StoreError::TokenNotFound(_))
    ));
    assert!(s.authenticate(&scoped_secret).unwrap().is_none());
    assert!(matches!(
        s.create_secrets(&me(), envs[0].id, vec![secret("K", "v")]),
        Err(StoreError::EnvironmentIdNotFound(_))
    ));

    // The other app is untouched.
    assert_eq!(s.get_secret(other_envs[0].id, kept_id).unwrap().value, "v");
    assert_eq!(s.get_token(other.id).unwrap().id, other.id);
    assert!(s.authenticate(&other_secret).unwrap().is_some());
    assert_eq!(s.list_apps().unwrap().len(), 1);
    assert_eq!(s.counts().secrets, 1);

    // The name is free again, and the same key can be created in the new app.
    let (again, again_envs) = s.app("shop");
    assert_ne!(again, app);
    s.create_secrets(&me(), again_envs[0].id, vec![secret("K", "v")])
        .unwrap();
}

#[test]
fn deleting_an_unknown_app_is_not_found() {
    let s = TestStore::new();
    let unknown = Uuid::new_v4();
    assert!(matches!(
        s.delete_app(&me(), unknown),
        Err(StoreError::AppNotFound(id)) if id == unknown
    ));
}

// --- environments ----------------------------------------------------------------------

#[test]
fn find_environment_takes_a_name_in_any_case_or_an_id() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let staging = &envs[1];
    for given in [
        "Staging".to_string(),
        "STAGING".into(),
        "staging".into(),
        staging.id.to_string(),
    ] {
        assert_eq!(
            &s.find_environment(app, &given).unwrap(),
            staging,
            "{given}"
        );
    }
}

#[test]
fn find_environment_of_another_app_or_unknown_name_is_not_found() {
    let s = TestStore::new();
    let (app, _) = s.app("shop");
    let (_, blog_envs) = s.app("blog");
    for given in [
        "qa".to_string(),
        blog_envs[0].id.to_string(),
        Uuid::new_v4().to_string(),
    ] {
        let err = s.find_environment(app, &given).unwrap_err();
        assert!(
            matches!(&err, StoreError::EnvironmentNotFound { app_id, name } if *app_id == app && *name == given),
            "{given}: {err:?}"
        );
    }
    let unknown_app = Uuid::new_v4();
    assert!(matches!(
        s.find_environment(unknown_app, "development"),
        Err(StoreError::AppNotFound(id)) if id == unknown_app
    ));
}

#[test]
fn a_new_environment_goes_last_with_its_type_from_its_name() {
    let s = TestStore::new();
    let (app, _) = s.app("shop");
    let qa = s.create_environment(&me(), app, "qa-eu_1").unwrap();
    assert_eq!(
        (qa.index, qa.env_type, qa.app_id),
        (3, EnvType::Custom, app)
    );
    let names: Vec<String> = s
        .list_environments(app)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["Development", "Staging", "Production", "qa-eu_1"]);
    assert_eq!(s.get_environment(qa.id).unwrap(), qa);
}

#[test]
fn environment_names_are_unique_in_an_app_in_any_case() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let (blog, _) = s.app("blog");
    let err = s.create_environment(&me(), app, "PRODUCTION").unwrap_err();
    assert!(
        matches!(&err, StoreError::EnvironmentNameTaken(n) if n == "PRODUCTION"),
        "{err:?}"
    );
    // Renaming onto a taken name is refused too.
    let err = s
        .rename_environment(&me(), envs[0].id, "staging")
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::EnvironmentNameTaken(n) if n == "staging"),
        "{err:?}"
    );
    assert_eq!(s.get_environment(envs[0].id).unwrap().name, "Development");
    // Another app may use the name.
    s.create_environment(&me(), blog, "qa").unwrap();
    s.create_environment(&me(), app, "qa").unwrap();
}

#[test]
fn environment_names_match_the_name_grammar() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    for bad in ["", "with space", "dot.ted", "é", &"x".repeat(65)] {
        let err = s.create_environment(&me(), app, bad).unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidEnvironmentName(n) if n == bad),
            "{bad:?}"
        );
        let err = s.rename_environment(&me(), envs[0].id, bad).unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidEnvironmentName(n) if n == bad),
            "{bad:?}"
        );
    }
    s.create_environment(&me(), app, &"x".repeat(64)).unwrap();
}

#[test]
fn renaming_an_environment_keeps_its_type_and_frees_the_old_name() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let renamed = s.rename_environment(&me(), envs[2].id, "live").unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.env_type, renamed.index),
        ("live", EnvType::Prod, 2)
    );
    assert_eq!(s.find_environment(app, "LIVE").unwrap().id, envs[2].id);
    assert!(matches!(
        s.find_environment(app, "production"),
        Err(StoreError::EnvironmentNotFound { .. })
    ));
    s.create_environment(&me(), app, "Production").unwrap();
    // A change of case only is a rename onto itself.
    assert_eq!(
        s.rename_environment(&me(), envs[0].id, "DEVELOPMENT")
            .unwrap()
            .name,
        "DEVELOPMENT"
    );
}

#[test]
fn environments_of_an_unknown_app_or_id_are_not_found() {
    let s = TestStore::new();
    let unknown = Uuid::new_v4();
    assert!(matches!(
        s.create_environment(&me(), unknown, "qa"),
        Err(StoreError::AppNotFound(id)) if id == unknown
    ));
    assert!(matches!(
        s.rename_environment(&me(), unknown, "qa"),
        Err(StoreError::EnvironmentIdNotFound(id)) if id == unknown
    ));
    assert!(matches!(
        s.delete_environment(&me(), unknown),
        Err(StoreError::EnvironmentIdNotFound(id)) if id == unknown
    ));
}

#[test]
fn deleting_an_environment_removes_its_secrets_and_history_only() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let (dev, staging) = (envs[0].id, envs[1].id);
    let doomed = s
        .create_secrets(&me(), dev, vec![secret("A", "1"), secret("B", "2")])
        .unwrap();
    // A secret deleted earlier still has history; it must go too.
    s.delete_secrets(&me(), dev, &[doomed[1].id]).unwrap();
    let kept = s
        .create_secrets(&me(), staging, vec![secret("A", "1")])
        .unwrap()[0]
        .id;

    s.delete_environment(&me(), dev).unwrap();

    assert!(matches!(
        s.get_environment(dev),
        Err(StoreError::EnvironmentIdNotFound(_))
    ));
    for d in &doomed {
        assert!(matches!(
            s.get_secret(dev, d.id),
            Err(StoreError::SecretNotFound(_))
        ));
        assert!(matches!(
            s.secret_history(dev, d.id),
            Err(StoreError::SecretNotFound(_))
        ));
    }
    assert!(matches!(
        s.create_secrets(&me(), dev, vec![secret("A", "again")]),
        Err(StoreError::EnvironmentIdNotFound(id)) if id == dev
    ));
    assert_eq!(s.get_secret(staging, kept).unwrap().value, "1");
    assert_eq!(s.counts().secrets, 1);
    let names: Vec<String> = s
        .list_environments(app)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["Staging", "Production"]);

    // Recreated under the same name it is a new, empty environment where the key is free.
    let fresh = s.create_environment(&me(), app, "Development").unwrap();
    assert_ne!(fresh.id, dev);
    // As Phase, an environment added to an app is custom, whatever its name.
    assert_eq!(fresh.env_type, EnvType::Custom);
    assert!(s
        .list_secrets(fresh.id, &SecretFilter::default())
        .unwrap()
        .is_empty());
    s.create_secrets(&me(), fresh.id, vec![secret("A", "again")])
        .unwrap();
}

#[test]
fn apps_and_environments_survive_a_reopen() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let qa = s.create_environment(&me(), app, "qa").unwrap();
    let s = s.reopen();
    let mut all = envs;
    all.push(qa);
    assert_eq!(s.list_environments(app).unwrap(), all);
    assert_eq!(s.get_app(app).unwrap().name, "shop");
    assert!(matches!(
        s.create_app(&me(), new_app("SHOP")),
        Err(StoreError::AppNameTaken(_))
    ));
}

#[test]
fn environment_lookups_seen_before_a_change_do_not_outlive_it() {
    let s = TestStore::new();
    let (app, envs) = s.app("shop");
    let (staging, production) = (envs[1].id, envs[2].id);
    let staging_id = staging.to_string();
    // Looked up first, so that a lookup cache would hold all of these.
    for name in ["production", "STAGING", staging_id.as_str(), "development"] {
        s.find_environment(app, name).unwrap();
    }

    s.rename_environment(&me(), production, "live").unwrap();
    assert!(matches!(
        s.find_environment(app, "production"),
        Err(StoreError::EnvironmentNotFound { .. })
    ));
    let live = s.find_environment(app, "live").unwrap();
    assert_eq!((live.id, live.name.as_str()), (production, "live"));

    s.delete_environment(&me(), staging).unwrap();
    for name in ["staging", staging_id.as_str()] {
        assert!(matches!(
            s.find_environment(app, name),
            Err(StoreError::EnvironmentNotFound { .. })
        ));
    }

    s.delete_app(&me(), app).unwrap();
    assert!(matches!(
        s.find_environment(app, "development"),
        Err(StoreError::AppNotFound(_))
    ));
}
