//! ACC-4 .. ACC-10: one table-driven test per behaviour.

use std::net::IpAddr;

use sync_policy::access::{
    AccountAuthFacts, ConnectionCounter, Credential, Direction, LoginAttempt, PlanFeature,
    Protocol, Refusal, RefusalReason, ServerAuthSettings, check_login, explain_failed_login,
};
use sync_policy::{OrgSettings, UnixTime, UserSettings, resolve};

/// A user who turned POP3 and IMAP on.
fn opted_in() -> UserSettings {
    let mut u = UserSettings::default();
    u.pop3.enable(UnixTime(0));
    u.imap.enabled = true;
    u
}

fn reason(r: Result<(), Refusal>) -> Option<RefusalReason> {
    r.err().map(|e| e.reason)
}

#[test]
fn acc4_two_step_requires_app_password() {
    let mut server = ServerAuthSettings::default();
    server.oauth2 = true;
    let policy = resolve(&OrgSettings::default(), &opted_in());
    let two_step = AccountAuthFacts {
        two_step_enabled: true,
        ..AccountAuthFacts::plain()
    };
    let table = [
        (Credential::AccountPassword, AccountAuthFacts::plain(), None),
        (Credential::AppPassword, AccountAuthFacts::plain(), None),
        (
            Credential::AccountPassword,
            two_step,
            Some(RefusalReason::AppPasswordRequired),
        ),
        (Credential::AppPassword, two_step, None),
        (Credential::OAuth2, two_step, None),
    ];
    for (credential, account, want) in table {
        for protocol in [Protocol::Pop3, Protocol::Imap, Protocol::Smtp] {
            let got = reason(check_login(
                &server,
                &policy,
                &LoginAttempt::new(protocol, credential, account),
            ));
            assert_eq!(got, want, "{protocol} {credential:?} {account:?}");
        }
    }
    let r = Refusal::new(RefusalReason::AppPasswordRequired);
    assert_eq!(
        r.render(Protocol::Imap),
        "NO [ALERT] Two-step verification is on for this account: sign in with an app password \
         (create one in your security settings), not the account password"
    );
    assert!(
        r.render(Protocol::Smtp)
            .starts_with("535 5.7.8 Two-step verification is on")
    );
    assert!(
        r.render(Protocol::Pop3)
            .starts_with("-ERR [AUTH] Two-step verification is on")
    );
}

#[test]
fn acc4_federated_account_told_to_create_app_password() {
    let federated = AccountAuthFacts {
        federated: true,
        has_account_password: false,
        has_app_password: false,
        two_step_enabled: false,
    };
    let table = [
        (federated, Some(RefusalReason::FederatedNeedsAppPassword)),
        (
            AccountAuthFacts {
                has_app_password: true,
                ..federated
            },
            None,
        ),
        (
            AccountAuthFacts {
                two_step_enabled: true,
                ..AccountAuthFacts::plain()
            },
            Some(RefusalReason::AppPasswordRequired),
        ),
        (
            AccountAuthFacts {
                two_step_enabled: true,
                has_app_password: true,
                ..AccountAuthFacts::plain()
            },
            None,
        ),
        (AccountAuthFacts::plain(), None),
    ];
    for (facts, want) in table {
        assert_eq!(
            explain_failed_login(&facts).map(|r| r.reason),
            want,
            "{facts:?}"
        );
    }
    // A federated account that somehow matched a password (e.g. the IdP's) is refused too.
    let policy = resolve(&OrgSettings::default(), &opted_in());
    let attempt = LoginAttempt::new(Protocol::Imap, Credential::AccountPassword, federated);
    let r = check_login(&ServerAuthSettings::default(), &policy, &attempt).unwrap_err();
    assert_eq!(r.reason, RefusalReason::FederatedNeedsAppPassword);
    assert_eq!(
        r.render(Protocol::Pop3),
        "-ERR [AUTH] This account signs in through an external identity provider and has no password \
         for mail clients: create an app password in your security settings and use it here"
    );
}

#[test]
fn acc5_org_and_user_switches() {
    use RefusalReason::{
        DisabledByOrganisation as Org, DisabledForAccount as Admin, NotEnabledByUser as User,
    };
    // (org allows, admin allows for the account, user turned it on, opt-in required) -> result
    let table = [
        (true, true, true, true, None),
        (false, true, true, true, Some(Org(Protocol::Imap))),
        (false, false, false, true, Some(Org(Protocol::Imap))),
        (true, false, true, true, Some(Admin(Protocol::Imap))),
        (true, true, false, true, Some(User(Protocol::Imap))),
        (true, true, false, false, None),
        (false, true, true, false, Some(Org(Protocol::Imap))),
    ];
    for (org_on, admin_on, user_on, opt_in, want) in table {
        let mut org = OrgSettings::default();
        org.protocols.imap = org_on;
        org.require_user_opt_in = opt_in;
        let mut user = UserSettings::default();
        user.admin.protocols.imap = admin_on;
        user.imap.enabled = user_on;
        let policy = resolve(&org, &user);
        assert_eq!(
            reason(policy.protocol_access(Protocol::Imap)),
            want,
            "{org_on} {admin_on} {user_on} {opt_in}"
        );
        // The POP3 switch of the user is independent of IMAP.
        assert_eq!(
            reason(policy.protocol_access(Protocol::Pop3)),
            opt_in.then_some(User(Protocol::Pop3)),
        );
    }
}

#[test]
fn acc5_smtp_follows_pop_or_imap_opt_in() {
    let org = OrgSettings::default();
    let table = [
        (false, false, false),
        (true, false, true),
        (false, true, true),
        (true, true, true),
    ];
    for (pop, imap, smtp_ok) in table {
        let mut user = UserSettings::default();
        user.pop3.enabled = pop;
        user.imap.enabled = imap;
        let got = resolve(&org, &user).protocol_access(Protocol::Smtp);
        assert_eq!(got.is_ok(), smtp_ok, "{pop} {imap}");
    }
    let mut org_off = OrgSettings::default();
    org_off.protocols.smtp = false;
    let r = resolve(&org_off, &opted_in())
        .protocol_access(Protocol::Smtp)
        .unwrap_err();
    assert_eq!(
        r.render(Protocol::Smtp),
        "535 5.7.8 SMTP access is turned off for your organisation; ask your administrator to allow SMTP access"
    );
}

#[test]
fn acc5_refusal_texts_per_protocol() {
    let table = [
        (
            RefusalReason::DisabledByOrganisation(Protocol::Pop3),
            Protocol::Pop3,
            "-ERR [AUTH] POP3 access is turned off for your organisation; ask your administrator to allow POP3 access",
        ),
        (
            RefusalReason::DisabledForAccount(Protocol::Imap),
            Protocol::Imap,
            "NO [CONTACTADMIN] IMAP access has been turned off for this account by an administrator; contact your administrator",
        ),
        (
            RefusalReason::NotEnabledByUser(Protocol::Imap),
            Protocol::Imap,
            "NO [ALERT] IMAP access is not turned on for this account; turn it on in your mail settings (POP/IMAP) and try again",
        ),
        (
            RefusalReason::NotEnabledByUser(Protocol::Smtp),
            Protocol::Smtp,
            "535 5.7.8 SMTP access is not turned on for this account; turn it on in your mail settings (POP/IMAP) and try again",
        ),
    ];
    for (reason, protocol, want) in table {
        let r = Refusal::new(reason);
        assert_eq!(r.render(protocol), want);
        assert!(
            r.text().bytes().all(|b| (0x20..0x7f).contains(&b)),
            "printable ASCII only"
        );
    }
}

#[test]
fn acc5_plan_gates_imports() {
    let mut org = OrgSettings::default();
    let user = opted_in();
    for f in [
        PlanFeature::ExternalImport,
        PlanFeature::ImapMigration,
        PlanFeature::EmlUpload,
    ] {
        assert!(
            resolve(&org, &user).check_feature(f).is_ok(),
            "default plan includes {f}"
        );
    }
    org.plan.external_import = false;
    org.plan.imap_migration = false;
    let policy = resolve(&org, &user);
    let table = [
        (
            PlanFeature::ExternalImport,
            Some(RefusalReason::FeatureNotInPlan(PlanFeature::ExternalImport)),
        ),
        (
            PlanFeature::ImapMigration,
            Some(RefusalReason::FeatureNotInPlan(PlanFeature::ImapMigration)),
        ),
        (PlanFeature::EmlUpload, None),
    ];
    for (f, want) in table {
        assert_eq!(reason(policy.check_feature(f)), want);
    }
    assert_eq!(
        policy
            .check_feature(PlanFeature::ImapMigration)
            .unwrap_err()
            .text(),
        "IMAP migration is not included in your organisation's plan; ask your administrator"
    );
}

#[test]
fn acc6_smtp_source_allowlist() {
    let mut org = OrgSettings::default();
    let user = opted_in();
    // Empty list: anywhere.
    assert!(
        resolve(&org, &user)
            .check_smtp_source("203.0.113.9".parse().unwrap())
            .is_ok()
    );

    org.smtp_allowed_sources = vec![
        "192.0.2.0/24".parse().unwrap(),
        "2001:db8::/32".parse().unwrap(),
    ];
    let policy = resolve(&org, &user);
    let table: [(&str, bool); 7] = [
        ("192.0.2.1", true),
        ("192.0.2.255", true),
        ("192.0.3.1", false),
        ("::ffff:192.0.2.7", true), // IPv4-mapped, as a dual-stack listener reports it
        ("::ffff:198.51.100.1", false),
        ("2001:db8:1::5", true),
        ("2001:db9::1", false),
    ];
    for (ip, ok) in table {
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(policy.check_smtp_source(ip).is_ok(), ok, "{ip}");
    }
    let r = policy
        .check_smtp_source("::ffff:198.51.100.1".parse().unwrap())
        .unwrap_err();
    assert_eq!(
        r.render(Protocol::Smtp),
        "550 5.7.1 Sending from 198.51.100.1 is not allowed for your organisation; ask your administrator \
         to add this address to the SMTP allowlist"
    );
}

#[test]
fn acc7_apop_allowed_per_server() {
    let policy = resolve(&OrgSettings::default(), &opted_in());
    let table = [
        (false, false, None),
        (false, true, Some(RefusalReason::ApopDisabled)),
        (true, true, None),
    ];
    for (server_apop, used_apop, want) in table {
        let mut server = ServerAuthSettings::default();
        server.apop = server_apop;
        let mut attempt = LoginAttempt::new(
            Protocol::Pop3,
            Credential::AppPassword,
            AccountAuthFacts::plain(),
        );
        attempt.apop = used_apop;
        assert_eq!(reason(check_login(&server, &policy, &attempt)), want);
    }
    assert_eq!(
        Refusal::new(RefusalReason::ApopDisabled).render(Protocol::Pop3),
        "-ERR [AUTH] APOP is not enabled on this server; log in with USER and PASS over TLS"
    );
    assert!(
        !ServerAuthSettings::default().apop,
        "APOP is off unless the server turns it on"
    );
}

#[test]
fn acc8_send_and_receive_size_limits() {
    let mut org = OrgSettings::default();
    org.limits.max_send_size = 10_000;
    org.limits.max_receive_size = 20_000;
    let mut user = opted_in();
    user.admin.max_receive_size = Some(15_000);
    let policy = resolve(&org, &user);
    let table = [
        (Direction::Send, 10_000, true),
        (Direction::Send, 10_001, false),
        (Direction::Receive, 15_000, true),
        (Direction::Receive, 15_001, false), // the account's lower limit applies
        (Direction::Receive, 20_000, false),
    ];
    for (dir, size, ok) in table {
        assert_eq!(policy.check_size(dir, size).is_ok(), ok, "{dir:?} {size}");
    }
    let r = policy.check_size(Direction::Send, 12_345).unwrap_err();
    assert_eq!(
        r.render(Protocol::Smtp),
        "552 5.3.4 Message too large to send: 12345 bytes, the limit is 10000 bytes"
    );
    let r = policy.check_size(Direction::Receive, 16_000).unwrap_err();
    assert_eq!(
        r.render(Protocol::Imap),
        "NO [TOOBIG] Message too large for this mailbox: 16000 bytes, the limit is 15000 bytes"
    );
    // Defaults: 50 MiB each way.
    let d = resolve(&OrgSettings::default(), &UserSettings::default());
    assert_eq!(
        (d.limits.max_send_size, d.limits.max_receive_size),
        (52_428_800, 52_428_800)
    );
}

#[test]
fn acc9_imap_connection_limit_acquire_release() {
    let mut org = OrgSettings::default();
    org.limits.max_imap_connections = 3;
    let mut user = opted_in();
    user.admin.max_imap_connections = Some(2);
    let limit = resolve(&org, &user).limits.max_imap_connections;
    assert_eq!(limit, 2);

    let mut counter = ConnectionCounter::new();
    let a1 = counter.try_acquire("alice@example.org", limit).unwrap();
    let a2 = counter.try_acquire("alice@example.org", limit).unwrap();
    let refused = counter.try_acquire("alice@example.org", limit).unwrap_err();
    assert_eq!(
        refused.reason,
        RefusalReason::TooManyConnections { limit: 2 }
    );
    assert_eq!(
        refused.render(Protocol::Imap),
        "NO [LIMIT] Too many simultaneous IMAP connections for this account (limit 2); close another mail client and try again"
    );
    // Another account is counted separately.
    let b1 = counter.try_acquire("bob@example.org", limit).unwrap();
    assert_eq!(
        (
            counter.current("alice@example.org"),
            counter.current("bob@example.org")
        ),
        (2, 1)
    );

    counter.release(a1);
    assert_eq!(counter.current("alice@example.org"), 1);
    let a3 = counter.try_acquire("alice@example.org", limit).unwrap();
    assert_eq!(a3.account(), "alice@example.org");
    counter.release(a2);
    counter.release(a3);
    counter.release(b1);
    assert_eq!(
        counter.accounts(),
        0,
        "released accounts leave no entry behind"
    );
}

#[test]
fn acc10_oauth2_flag() {
    let policy = resolve(&OrgSettings::default(), &opted_in());
    let table = [(false, Some(RefusalReason::OAuth2Disabled)), (true, None)];
    for (server_oauth2, want) in table {
        let mut server = ServerAuthSettings::default();
        server.oauth2 = server_oauth2;
        let attempt = LoginAttempt::new(
            Protocol::Imap,
            Credential::OAuth2,
            AccountAuthFacts::plain(),
        );
        assert_eq!(reason(check_login(&server, &policy, &attempt)), want);
    }
    assert_eq!(
        Refusal::new(RefusalReason::OAuth2Disabled)
            .render(Protocol::Smtp)
            .get(..9),
        Some("504 5.5.4")
    );
}

#[test]
fn login_checks_protocol_before_credential() {
    // A disabled protocol is reported even when the credential is also wrong for the account.
    let mut org = OrgSettings::default();
    org.protocols.pop3 = false;
    let policy = resolve(&org, &opted_in());
    let attempt = LoginAttempt::new(
        Protocol::Pop3,
        Credential::AccountPassword,
        AccountAuthFacts {
            two_step_enabled: true,
            ..AccountAuthFacts::plain()
        },
    );
    assert_eq!(
        reason(check_login(
            &ServerAuthSettings::default(),
            &policy,
            &attempt
        )),
        Some(RefusalReason::DisabledByOrganisation(Protocol::Pop3))
    );
}
