//! Which applications hold access to an account, from what the store keeps of
//! their grants (codes and refresh tokens; access tokens are self-contained and
//! leave no row, so their life is reckoned from when they were last issued).
//! Pure: the store reads the rows, `portcullis-oidc` lists and revokes.

use std::collections::BTreeMap;

use crate::clock::UnixTime;
use crate::oauth::Grant;

/// What a stored row of a grant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantArtifact {
    /// An authorization code.
    Code,
    /// A refresh token (each rotation is a row).
    RefreshToken,
}

/// One stored code or refresh token of a grant that has not been revoked.
#[derive(Debug, Clone)]
pub struct GrantRow {
    /// What the row is.
    pub artifact: GrantArtifact,
    /// The grant it carries.
    pub grant: Grant,
    /// The application's display name.
    pub client_name: String,
    /// When it was issued.
    pub created_at: UnixTime,
    /// When it was spent (code redeemed, refresh token rotated).
    pub spent_at: Option<UnixTime>,
    /// When it expires.
    pub expires_at: UnixTime,
}

impl GrantRow {
    /// It can still be redeemed.
    fn usable(&self, now: UnixTime) -> bool {
        self.spent_at.is_none() && self.expires_at > now
    }

    /// When tokens were last issued from it: a code when it was redeemed; a
    /// refresh token when it was issued (with an access token) or redeemed
    /// (its successor, issued in the same request, says the same).
    fn tokens_issued_at(&self) -> Option<UnixTime> {
        match self.artifact {
            GrantArtifact::Code => self.spent_at,
            GrantArtifact::RefreshToken => Some(self.spent_at.map_or(self.created_at, |at| at.max(self.created_at))),
        }
    }
}

/// An application that holds access to an account: one or more grants
/// that can still issue tokens, or whose access tokens may still be live.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AppAccess {
    /// The client's id.
    pub client_id: String,
    /// Its display name.
    pub client_name: String,
    /// Every scope its live grants carry, sorted.
    pub scopes: Vec<String>,
    /// When the oldest live grant was made.
    pub first_granted: UnixTime,
    /// When it last got tokens (`None`: a code not redeemed yet).
    pub last_used: Option<UnixTime>,
    /// Whether it holds a refresh token that still works.
    pub refresh_token: bool,
    /// The live grants' ids (what "Remove access" revokes).
    #[serde(skip)]
    pub grant_ids: Vec<String>,
}

/// What a user allowed a self-registered client (it may sign them in
/// again without asking, so it holds access as long as this stands).
#[derive(Debug, Clone)]
pub struct ClientConsent {
    /// The client's id.
    pub client_id: String,
    /// Its display name.
    pub client_name: String,
    /// The scopes allowed, space-separated.
    pub scope: String,
    /// When.
    pub granted_at: UnixTime,
}

/// The applications holding access to an account, by name, from the rows of
/// its unrevoked grants and what it allowed self-registered clients. A grant
/// counts while a code or refresh token of it can be redeemed, or an access
/// token issued from it can still be live (`access_token_lifetime` after it
/// was last issued one); a consent counts until it is withdrawn.
pub fn applications(rows: Vec<GrantRow>, consents: Vec<ClientConsent>, access_token_lifetime: i64, now: UnixTime) -> Vec<AppAccess> {
    let mut grants: BTreeMap<String, Vec<GrantRow>> = BTreeMap::new();
    for row in rows {
        grants.entry(row.grant.grant_id.clone()).or_default().push(row);
    }
    let mut apps: BTreeMap<String, AppAccess> = BTreeMap::new();
    for (grant_id, rows) in grants {
        let last_issue = rows.iter().filter_map(GrantRow::tokens_issued_at).max();
        let live = rows.iter().any(|r| r.usable(now)) || last_issue.is_some_and(|at| at + access_token_lifetime > now);
        if !live {
            continue;
        }
        let first = &rows[0];
        let app = apps.entry(first.grant.client_id.clone()).or_insert_with(|| AppAccess {
            client_id: first.grant.client_id.clone(),
            client_name: first.client_name.clone(),
            scopes: Vec::new(),
            first_granted: UnixTime::MAX,
            last_used: None,
            refresh_token: false,
            grant_ids: Vec::new(),
        });
        for row in &rows {
            app.scopes.extend(row.grant.scope.split_whitespace().map(str::to_owned));
            app.first_granted = app.first_granted.min(row.created_at);
            app.refresh_token |= row.artifact == GrantArtifact::RefreshToken && row.usable(now);
        }
        app.last_used = app.last_used.max(last_issue);
        app.grant_ids.push(grant_id);
    }
    for consent in consents {
        let app = apps.entry(consent.client_id.clone()).or_insert_with(|| AppAccess {
            client_id: consent.client_id.clone(),
            client_name: consent.client_name.clone(),
            scopes: Vec::new(),
            first_granted: consent.granted_at,
            last_used: None,
            refresh_token: false,
            grant_ids: Vec::new(),
        });
        app.scopes.extend(consent.scope.split_whitespace().map(str::to_owned));
        app.first_granted = app.first_granted.min(consent.granted_at);
    }
    let mut apps: Vec<AppAccess> = apps.into_values().collect();
    for app in &mut apps {
        app.scopes.sort();
        app.scopes.dedup();
    }
    apps.sort_by(|a, b| a.client_name.cmp(&b.client_name).then_with(|| a.client_id.cmp(&b.client_id)));
    apps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::AuthRecord;
    use crate::user::UserId;

    fn row(artifact: GrantArtifact, grant_id: &str, client: &str, scope: &str, times: (i64, Option<i64>, i64)) -> GrantRow {
        GrantRow {
            artifact,
            grant: Grant {
                grant_id: grant_id.into(),
                client_id: client.into(),
                user_id: UserId::new(),
                scope: scope.into(),
                auth: AuthRecord::default(),
                session_id: "s".into(),
                acr: None,
                security_epoch: 0,
            },
            client_name: client.to_uppercase(),
            created_at: times.0,
            spent_at: times.1,
            expires_at: times.2,
        }
    }

    #[test]
    fn an_app_is_listed_while_its_grant_can_issue_or_its_access_tokens_may_live() {
        use GrantArtifact::*;
        let now = 10_000;
        let rows = vec![
            // A redeemed code whose refresh token was rotated once: holds a refresh token.
            row(Code, "g1", "mail", "openid email", (1_000, Some(1_010), 1_060)),
            row(RefreshToken, "g1", "mail", "openid email", (1_010, Some(9_000), 99_000)),
            row(RefreshToken, "g1", "mail", "openid email", (9_000, None, 99_000)),
            // A second grant of the same app, with another scope.
            row(Code, "g2", "mail", "openid profile", (9_500, Some(9_510), 9_560)),
            // Redeemed two hours ago without a refresh token: its access tokens are dead.
            row(Code, "g3", "wiki", "openid", (2_800, Some(2_810), 2_860)),
            // Redeemed 10 minutes ago: an access token may be live.
            row(Code, "g4", "chat", "openid", (9_390, Some(9_400), 9_450)),
            // A code not redeemed yet.
            row(Code, "g5", "blog", "openid", (9_990, None, 10_050)),
        ];
        let consents =
            vec![ClientConsent { client_id: "forum".into(), client_name: "FORUM".into(), scope: "openid".into(), granted_at: 500 }];
        let apps = applications(rows, consents, 3_600, now);
        let names: Vec<&str> = apps.iter().map(|a| a.client_id.as_str()).collect();
        assert_eq!(names, ["blog", "chat", "forum", "mail"], "an allowed self-registered client counts with no live grant");
        assert_eq!((apps[2].first_granted, apps[2].last_used), (500, None));
        let mail = &apps[3];
        assert_eq!(mail.scopes, ["email", "openid", "profile"]);
        assert_eq!((mail.first_granted, mail.last_used, mail.refresh_token), (1_000, Some(9_510), true));
        assert_eq!(mail.grant_ids, ["g1", "g2"]);
        assert_eq!((apps[0].last_used, apps[0].refresh_token), (None, false));
        assert!(!apps[1].refresh_token);
    }
}
