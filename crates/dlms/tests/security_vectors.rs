//! Security suite 0 against published vectors and an independent implementation.
//!
//! - DLMS UA Green Book (DLMS UA 1000-2) AES-GCM examples: EK 000102…0F, AK D0D1…DF, system title
//!   4D4D4D0000BC614E, IC 01234567; the glo-get-request in its authentication-only,
//!   encryption-only and authenticated-encryption forms; the glo-initiateRequest example; the
//!   HLS-GMAC (mechanism 5) example (Table "HLS example using authentication-mechanism 5").
//! - Vectors generated with the Gurux Python library (`gurux_dlms`), with this snippet:
//!
//! ```python
//! from types import SimpleNamespace as NS
//! from gurux_dlms.GXDLMSChippering import GXDLMSChippering
//! from gurux_dlms.AesGcmParameter import AesGcmParameter
//! from gurux_dlms.GXSecure import GXSecure
//! from gurux_dlms.enums import Security, Authentication
//! h = bytes.fromhex
//! EK = h("000102030405060708090A0B0C0D0E0F"); AK = h("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
//! def enc(tag, st, ic, sec, plain, ek=EK, ak=AK):
//!     p = AesGcmParameter(tag, st, ek, ak); p.security = sec; p.invocationCounter = ic
//!     return bytes(GXDLMSChippering.encryptAesGcm(p, plain)).hex().upper()
//! resp = h("C401C1000906") + bytes([6]) + b"ABCDEF"
//! enc(0xDB, h("4D4D4D0000000001"), 0x102, Security.AUTHENTICATION_ENCRYPTION, resp)
//! payload = h("C401C100" "09820130") + bytes((i * 7) & 0xFF for i in range(0x130))
//! enc(0xCC, h("4D4D4D0000BC614E"), 0xABCD, Security.AUTHENTICATION, payload)
//! enc(0xCC, h("4D4D4D0000BC614E"), 0xABCE, Security.ENCRYPTION, payload)
//! enc(0xD0, h("5A5A5A0000000042"), 7, Security.AUTHENTICATION_ENCRYPTION,
//!     h("C0014100070100630100FF0200"),
//!     h("2B7E151628AED2A6ABF7158809CF4F3C"), h("000102030405060708090A0B0C0D0E0F"))
//! settings = NS(authentication=Authentication.HIGH)
//! GXSecure.secure(settings, None, 0, h(challenge), b"RRRRRRRRRRRRRRRR")   # mechanism 2
//! cipher = NS(blockCipherKey=EK, authenticationKey=AK, securitySuite=0)
//! settings5 = NS(authentication=Authentication.HIGH_GMAC)
//! GXSecure.secure(settings5, cipher, 0x10, bytes(range(32)), h("4D4D4D0000000001"))  # mech. 5
//! ```

use dlms::apdu::Mechanism;
use dlms::security::{
    CipheredApdu, Envelope, GlobalKeys, Hls, HlsSecret, InvocationCounter, ReplayGuard,
    SecurityControl, SecurityError, SecurityPolicy, Suite0Cipher, SystemTitle, hls_response,
    hls_verify, protect, unprotect,
};
use proptest::prelude::*;

const EK: [u8; 16] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
const AK: [u8; 16] = [
    0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF,
];
/// Green Book server system title ("MMM" + 12345678).
const SERVER_TITLE: SystemTitle = [0x4D, 0x4D, 0x4D, 0x00, 0x00, 0xBC, 0x61, 0x4E];
/// Green Book client system title.
const CLIENT_TITLE: SystemTitle = [0x4D, 0x4D, 0x4D, 0x00, 0x00, 0x00, 0x00, 0x01];
const GB_IC: u32 = 0x0123_4567;
/// Get-request normal: clock (class 8) 0.0.1.0.0.255 attribute 2.
const GB_GET_REQUEST: &str = "C0010000080000010000FF0200";

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("test hex")
}

fn cipher() -> Suite0Cipher {
    Suite0Cipher::new(&GlobalKeys {
        encryption: EK,
        authentication: AK,
    })
}

fn protect_with(policy: SecurityPolicy, envelope: Envelope, plain: &[u8], ic: u32) -> Vec<u8> {
    protect(
        plain,
        envelope,
        SecurityControl::new(policy),
        &cipher(),
        &SERVER_TITLE,
        &mut InvocationCounter::new(ic),
    )
    .expect("protect")
}

fn unprotect_fresh(bytes: &[u8], title: &SystemTitle) -> Result<Vec<u8>, SecurityError> {
    unprotect(
        bytes,
        &cipher(),
        title,
        SecurityPolicy::None,
        &mut ReplayGuard::new(),
    )
    .map(|u| u.apdu)
}

// ---- Green Book -------------------------------------------------------------------------------

#[test]
fn green_book_glo_get_request_authenticated_encryption() {
    let expected = h("C8 1E 30 01234567 411312FF935A47566827C467BC 7D825C3BE4A77C3FCC056B6B");
    let plain = h(GB_GET_REQUEST);
    let got = protect_with(
        SecurityPolicy::AuthenticatedEncrypted,
        Envelope::Glo,
        &plain,
        GB_IC,
    );
    assert_eq!(hex::encode_upper(&got), hex::encode_upper(&expected));
    assert_eq!(unprotect_fresh(&expected, &SERVER_TITLE), Ok(plain));
}

#[test]
fn green_book_glo_get_request_authentication_only() {
    let expected = h("C8 1E 10 01234567 C0010000080000010000FF0200 06725D910F9221D263877516");
    let plain = h(GB_GET_REQUEST);
    let got = protect_with(SecurityPolicy::Authenticated, Envelope::Glo, &plain, GB_IC);
    assert_eq!(hex::encode_upper(&got), hex::encode_upper(&expected));
    assert_eq!(unprotect_fresh(&expected, &SERVER_TITLE), Ok(plain));
}

#[test]
fn green_book_glo_get_request_encryption_only() {
    let expected = h("C8 12 20 01234567 411312FF935A47566827C467BC");
    let plain = h(GB_GET_REQUEST);
    let got = protect_with(SecurityPolicy::Encrypted, Envelope::Glo, &plain, GB_IC);
    assert_eq!(hex::encode_upper(&got), hex::encode_upper(&expected));
    assert_eq!(unprotect_fresh(&expected, &SERVER_TITLE), Ok(plain));
}

#[test]
fn green_book_glo_initiate_request() {
    let plain = h("01011000112233445566778899AABBCCDDEEFF0000065F1F0400007E1F04B0");
    let expected = h(
        "21 30 30 01234567 801302FF8A7874133D414CED25B42534D28DB0047720606B175BD522\
                      11BE6841DB204D39EE6FDB8E356855",
    );
    let got = protect_with(
        SecurityPolicy::AuthenticatedEncrypted,
        Envelope::Glo,
        &plain,
        GB_IC,
    );
    assert_eq!(hex::encode_upper(&got), hex::encode_upper(&expected));
    assert_eq!(unprotect_fresh(&expected, &SERVER_TITLE), Ok(plain));
}

#[test]
fn green_book_suite0_encrypt_gives_header_payload_tag() {
    let plain = h(GB_GET_REQUEST);
    let sc = SecurityControl(0x30);
    let out = cipher()
        .encrypt(sc, &SERVER_TITLE, GB_IC, &plain)
        .expect("encrypt");
    assert_eq!(
        hex::encode_upper(&out),
        "3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B"
    );
    let d = cipher().decrypt(&SERVER_TITLE, &out).expect("decrypt");
    assert_eq!(
        (d.security_control, d.invocation_counter, d.plaintext),
        (sc, GB_IC, plain)
    );
}

#[test]
fn green_book_hls_gmac_passes_3_and_4() {
    let c = cipher();
    let ctos = b"K56iVagY";
    let stoc = b"P6wRJ21F";
    // Pass 3: the client answers StoC with its own system title and IC 1.
    let f_stoc = hls_response(Hls::Mechanism5(&c), stoc, &CLIENT_TITLE, 1).expect("f(StoC)");
    assert_eq!(
        hex::encode_upper(&f_stoc),
        "10000000011A52FE7DD3E72748973C1E28"
    );
    // Pass 4: the server answers CtoS with its system title and IC 01234567.
    let f_ctos = hls_response(Hls::Mechanism5(&c), ctos, &SERVER_TITLE, GB_IC).expect("f(CtoS)");
    assert_eq!(
        hex::encode_upper(&f_ctos),
        "1001234567FE1466AFB3DBCD4F9389E2B7"
    );
    // Each side verifies with the other side's system title.
    assert_eq!(
        hls_verify(Hls::Mechanism5(&c), stoc, &f_stoc, &CLIENT_TITLE),
        Ok(())
    );
    assert_eq!(
        hls_verify(Hls::Mechanism5(&c), ctos, &f_ctos, &SERVER_TITLE),
        Ok(())
    );
    assert_eq!(
        hls_verify(Hls::Mechanism5(&c), stoc, &f_stoc, &SERVER_TITLE),
        Err(SecurityError::AuthenticationFailed),
        "the responder's title, not the verifier's, goes into the IV"
    );
    assert_eq!(
        dlms::security::gmac_invocation_counter(&f_ctos),
        Some(GB_IC)
    );
    assert_eq!(Hls::Mechanism5(&c).mechanism(), Mechanism::HlsGmac);
}

// ---- Gurux Python cross-checks ----------------------------------------------------------------

fn gurux_payload() -> Vec<u8> {
    let mut p = h("C401C10009820130");
    p.extend((0..0x130u32).map(|i| (i * 7) as u8));
    p
}

#[test]
fn gurux_general_glo_ciphering() {
    let plain = h("C401C1000906 06 414243444546");
    let expected = h(
        "DB 08 4D4D4D0000000001 1E 30 00000102 0C283F1901054AAFD9A939AF2101C42100C1\
                      E53C6F7D715C3A",
    );
    let got = protect(
        &plain,
        Envelope::GeneralGlo,
        SecurityControl::new(SecurityPolicy::AuthenticatedEncrypted),
        &cipher(),
        &CLIENT_TITLE,
        &mut InvocationCounter::new(0x102),
    )
    .expect("protect");
    assert_eq!(hex::encode_upper(&got), hex::encode_upper(&expected));
    let parsed = CipheredApdu::decode(&expected).expect("decode");
    assert_eq!(parsed.envelope, Envelope::GeneralGlo);
    assert_eq!(parsed.system_title, Some(&CLIENT_TITLE[..]));
    assert_eq!(parsed.invocation_counter, 0x102);
    assert_eq!(unprotect_fresh(&expected, &CLIENT_TITLE), Ok(plain));
    assert_eq!(
        unprotect_fresh(&expected, &SERVER_TITLE),
        Err(SecurityError::SystemTitleMismatch)
    );
}

#[test]
fn gurux_glo_get_response_authentication_only_with_long_length() {
    let plain = gurux_payload();
    let got = protect_with(SecurityPolicy::Authenticated, Envelope::Glo, &plain, 0xABCD);
    // CC 82 0149 10 0000ABCD <plaintext, 312 bytes> <tag>
    let mut expected = h("CC820149100000ABCD");
    expected.extend_from_slice(&plain);
    expected.extend(h("007F504D2F5F73F6C2265F04"));
    assert_eq!(hex::encode_upper(&got), hex::encode_upper(&expected));
    assert_eq!(unprotect_fresh(&expected, &SERVER_TITLE), Ok(plain));
}

#[test]
fn gurux_glo_get_response_encryption_only() {
    let plain = gurux_payload();
    let got = protect_with(SecurityPolicy::Encrypted, Envelope::Glo, &plain, 0xABCE);
    let expected = h(
        "CC82013D200000ABCE6DA9C6C537057A5E8B91D3CC4EFB06F1F83A1D4F4736C2E48A6DAFC9\
        6CBD03FFC92E9DEB613C60A26EFCED5B2C3C37416F63377CD426F1211EEB39DA54CD6FFF5A8EC9DDBE8BA86DB8\
        C2AC16F25B6E6E927CFA4AD67E012F1E805F56146CB5026E1A96E5014D6EC1D7378A6F42B3C9E3787DAADEA0D2\
        67E7218B837D5BE55AA7004F281691EFE669A2494E80F03116C1A7103C280E64972D468D55854F976F9D0B7B1E\
        1E4DC8B11BFE8AFEB1BD8AD1A49D32239BB356E121753ECD1B6F001B3A0372918605292B51142B0ECD87052990\
        CDE606A54E02295014794981EE3AD63D58A4B81439C5B4B377EE87C6186F338F040E99E377766F13D181776C28\
        D86464487CB31DAF8E685A787068FA76CEDD13673CEB9A0669E5EDF0EEBF12C1B5D48F7C516F74F501DA0D8222\
        6134280B921745DDD2E5D773BC89",
    );
    assert_eq!(hex::encode_upper(&got), hex::encode_upper(&expected));
    assert_eq!(unprotect_fresh(&expected, &SERVER_TITLE), Ok(plain));
}

#[test]
fn gurux_ded_get_request_with_other_keys() {
    let key = h("2B7E151628AED2A6ABF7158809CF4F3C");
    let dedicated = Suite0Cipher::with_keys(
        &key.try_into().expect("16 bytes"),
        &EK, /* used as AK here */
    );
    let title: SystemTitle = [0x5A, 0x5A, 0x5A, 0, 0, 0, 0, 0x42];
    let plain = h("C0014100070100630100FF0200");
    let expected = h("D01E3000000007ED1947E49666C24E05A5EABA92FB987EE43D275700D934AF7F");
    let sc = SecurityControl::new(SecurityPolicy::AuthenticatedEncrypted);
    let got = protect(
        &plain,
        Envelope::Ded,
        sc,
        &dedicated,
        &title,
        &mut InvocationCounter::new(7),
    )
    .expect("protect");
    assert_eq!(hex::encode_upper(&got), hex::encode_upper(&expected));
    let mut guard = ReplayGuard::new();
    let u = unprotect(
        &expected,
        &dedicated,
        &title,
        SecurityPolicy::AuthenticatedEncrypted,
        &mut guard,
    )
    .expect("unprotect");
    assert_eq!(
        (u.envelope, u.invocation_counter, u.apdu),
        (Envelope::Ded, 7, plain)
    );
    // The global key cannot open a dedicated-key APDU.
    assert_eq!(
        unprotect_fresh(&expected, &title),
        Err(SecurityError::AuthenticationFailed)
    );
}

#[test]
fn gurux_hls_mechanism2() {
    let secret = HlsSecret::new(*b"RRRRRRRRRRRRRRRR");
    let hls = Hls::Mechanism2(&secret);
    let cases = [
        ("0102030405060708", "2CD8E6F37B298E69D3CA0A873CD38880"),
        (
            "000102030405060708090A0B0C0D0E0F",
            "5A20EC5880AD426C0506E79F1CF04E67",
        ),
        (
            "F0E1D2C3B4A5968778695A4B3C2D1E0F0011223344",
            "D90CBCC0A4A2E9FCCF43B62260751EA0F52792EC11ECF6D4A4CF4A16791799A2",
        ),
    ];
    for (challenge, expected) in cases {
        let challenge = h(challenge);
        let f = hls_response(hls, &challenge, &SERVER_TITLE, 0).expect("f(challenge)");
        assert_eq!(hex::encode_upper(&f), expected);
        assert_eq!(hls_verify(hls, &challenge, &f, &CLIENT_TITLE), Ok(()));
    }
    // A secret shorter than 16 bytes is zero-padded, as Gurux does.
    let short = HlsSecret::from_slice(b"abcdefgh").expect("short secret");
    let f = hls_response(
        Hls::Mechanism2(&short),
        &h("0102030405060708"),
        &SERVER_TITLE,
        0,
    );
    assert_eq!(
        hex::encode_upper(f.expect("f")),
        "2D4B23D9B502ADB75F3051270FE57096"
    );
    assert_eq!(
        HlsSecret::from_slice(&[0; 17]),
        Err(SecurityError::SecretLength(17))
    );
    assert_eq!(hls.mechanism(), Mechanism::Hls);
}

#[test]
fn gurux_hls_mechanism5_long_challenge() {
    let c = cipher();
    let challenge: Vec<u8> = (0..32).collect();
    let f = hls_response(Hls::Mechanism5(&c), &challenge, &CLIENT_TITLE, 0x10).expect("f");
    assert_eq!(hex::encode_upper(&f), "1000000010BCC2B17B94E1D864B836D3B3");
}

// ---- Failures -----------------------------------------------------------------------------------

fn gb_ae_apdu() -> Vec<u8> {
    h("C81E3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B")
}

#[test]
fn tampered_ciphertext_or_tag_fails_authentication() {
    let good = gb_ae_apdu();
    for at in [7, 12, 19, 20, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        assert_eq!(
            unprotect_fresh(&bad, &SERVER_TITLE),
            Err(SecurityError::AuthenticationFailed),
            "byte {at} flipped"
        );
    }
    // Authentication only: the plaintext is in clear but covered by the tag.
    let mut bad = h("C81E1001234567C0010000080000010000FF020006725D910F9221D263877516");
    bad[12] ^= 0x80;
    assert_eq!(
        unprotect_fresh(&bad, &SERVER_TITLE),
        Err(SecurityError::AuthenticationFailed)
    );
    // Changing the invocation counter changes the IV.
    let mut bad = good.clone();
    bad[6] ^= 0x01;
    assert_eq!(
        unprotect_fresh(&bad, &SERVER_TITLE),
        Err(SecurityError::AuthenticationFailed)
    );
}

#[test]
fn failed_in_place_decryption_leaves_no_plaintext() {
    let mut buf = gb_ae_apdu()[2..].to_vec(); // SC ‖ IC ‖ ciphertext ‖ tag
    let last = buf.len() - 1;
    buf[last] ^= 1;
    let r = cipher().decrypt_in_place(&SERVER_TITLE, &mut buf);
    assert_eq!(r, Err(SecurityError::AuthenticationFailed));
    let plain = h(GB_GET_REQUEST);
    assert_ne!(&buf[5..5 + plain.len()], &plain[..]);
    assert!(buf[5..5 + plain.len()].iter().all(|b| *b == 0));
}

#[test]
fn downgraded_security_control_is_refused() {
    // Rewriting SC 0x30 to 0x20 strips the tag check; a receiver requiring authentication
    // refuses it before looking further.
    let mut bad = gb_ae_apdu();
    bad[2] = 0x20;
    let r = unprotect(
        &bad,
        &cipher(),
        &SERVER_TITLE,
        SecurityPolicy::AuthenticatedEncrypted,
        &mut ReplayGuard::new(),
    );
    assert_eq!(
        r,
        Err(SecurityError::PolicyViolation {
            required: SecurityPolicy::AuthenticatedEncrypted,
            received: SecurityPolicy::Encrypted
        })
    );
    // Rewriting it to 0x10 (authentication only) breaks the tag.
    bad[2] = 0x10;
    assert_eq!(
        unprotect_fresh(&bad, &SERVER_TITLE),
        Err(SecurityError::AuthenticationFailed)
    );
}

#[test]
fn wrong_key_or_system_title_fails() {
    let other = Suite0Cipher::new(&GlobalKeys {
        encryption: [0x11; 16],
        authentication: AK,
    });
    let other_ak = Suite0Cipher::new(&GlobalKeys {
        encryption: EK,
        authentication: [0x22; 16],
    });
    let apdu = gb_ae_apdu();
    for c in [&other, &other_ak] {
        let r = unprotect(
            &apdu,
            c,
            &SERVER_TITLE,
            SecurityPolicy::None,
            &mut ReplayGuard::new(),
        );
        assert_eq!(r.map(|u| u.apdu), Err(SecurityError::AuthenticationFailed));
    }
    assert_eq!(
        unprotect_fresh(&apdu, &CLIENT_TITLE),
        Err(SecurityError::AuthenticationFailed)
    );
}

#[test]
fn replayed_invocation_counter_is_rejected_and_forgeries_do_not_move_it() {
    let c = cipher();
    let plain = h(GB_GET_REQUEST);
    let mut sender = InvocationCounter::new(10);
    let sc = SecurityControl::new(SecurityPolicy::AuthenticatedEncrypted);
    let first = protect(&plain, Envelope::Glo, sc, &c, &SERVER_TITLE, &mut sender).expect("1");
    let second = protect(&plain, Envelope::Glo, sc, &c, &SERVER_TITLE, &mut sender).expect("2");
    assert_eq!(sender.peek(), 12);

    let mut guard = ReplayGuard::new();
    let policy = SecurityPolicy::AuthenticatedEncrypted;
    let u = unprotect(&first, &c, &SERVER_TITLE, policy, &mut guard).expect("first");
    assert_eq!(u.invocation_counter, 10);
    assert_eq!(
        unprotect(&first, &c, &SERVER_TITLE, policy, &mut guard),
        Err(SecurityError::Replayed {
            received: 10,
            last: 10
        })
    );

    // A forged APDU with a high counter fails authentication and is not recorded.
    let mut forged = second.clone();
    forged[3..7].copy_from_slice(&0xFFFF_0000u32.to_be_bytes());
    assert_eq!(
        unprotect(&forged, &c, &SERVER_TITLE, policy, &mut guard),
        Err(SecurityError::AuthenticationFailed)
    );
    assert_eq!(guard.last_accepted(), Some(10));
    assert!(unprotect(&second, &c, &SERVER_TITLE, policy, &mut guard).is_ok());
    assert_eq!(
        unprotect(&first, &c, &SERVER_TITLE, policy, &mut guard),
        Err(SecurityError::Replayed {
            received: 10,
            last: 11
        })
    );

    // The guard outlives an association: a restored guard still rejects the old counter.
    let mut restored = ReplayGuard::with_last_accepted(guard.last_accepted().expect("set"));
    assert!(unprotect(&second, &c, &SERVER_TITLE, policy, &mut restored).is_err());
}

#[test]
fn an_encryption_only_apdu_is_checked_against_replay_but_never_moves_the_guard() {
    let c = cipher();
    let plain = h(GB_GET_REQUEST);
    let mut guard = ReplayGuard::with_last_accepted(10);
    // Anyone can build an encryption-only APDU (no tag), e.g. one claiming a counter at the end
    // of the range (our sender never hands out u32::MAX itself).
    let forged = protect_with(
        SecurityPolicy::Encrypted,
        Envelope::Glo,
        &plain,
        u32::MAX - 1,
    );
    let opened = unprotect(&forged, &c, &SERVER_TITLE, SecurityPolicy::None, &mut guard);
    assert_eq!(opened.map(|u| u.apdu), Ok(plain.clone()));
    assert_eq!(
        guard.last_accepted(),
        Some(10),
        "not recorded: not authenticated"
    );
    // It is still checked: an old counter is refused.
    let old = protect_with(SecurityPolicy::Encrypted, Envelope::Glo, &plain, 10);
    assert_eq!(
        unprotect(&old, &c, &SERVER_TITLE, SecurityPolicy::None, &mut guard).map(|u| u.apdu),
        Err(SecurityError::Replayed {
            received: 10,
            last: 10
        })
    );
    // The real peer is not locked out: its next authenticated APDU is accepted and recorded.
    let real = protect_with(
        SecurityPolicy::AuthenticatedEncrypted,
        Envelope::Glo,
        &plain,
        11,
    );
    let policy = SecurityPolicy::AuthenticatedEncrypted;
    assert!(unprotect(&real, &c, &SERVER_TITLE, policy, &mut guard).is_ok());
    assert_eq!(guard.last_accepted(), Some(11));
}

#[test]
fn exhausted_sender_counter_refuses_to_protect() {
    let mut counter = InvocationCounter::new(u32::MAX);
    let r = protect(
        &h(GB_GET_REQUEST),
        Envelope::Glo,
        SecurityControl(0x30),
        &cipher(),
        &SERVER_TITLE,
        &mut counter,
    );
    assert_eq!(r, Err(SecurityError::CounterExhausted));
}

#[test]
fn unsupported_or_unprotected_apdus_are_refused() {
    let c = cipher();
    let mut counter = InvocationCounter::new(1);
    let plain = h(GB_GET_REQUEST);
    let data_notification = h("0F00000001000900");
    assert_eq!(
        protect(
            &data_notification,
            Envelope::Glo,
            SecurityControl(0x30),
            &c,
            &SERVER_TITLE,
            &mut counter
        ),
        Err(SecurityError::NotCipherable {
            tag: 0x0F,
            envelope: Envelope::Glo
        })
    );
    assert!(
        protect(
            &data_notification,
            Envelope::GeneralGlo,
            SecurityControl(0x30),
            &c,
            &SERVER_TITLE,
            &mut counter
        )
        .is_ok()
    );
    for (sc, err) in [
        (0x00, SecurityError::NoProtection(0)),
        (0x31, SecurityError::UnsupportedSuite(1)),
        (0xB0, SecurityError::Unsupported("compression")),
    ] {
        let r = protect(
            &plain,
            Envelope::Glo,
            SecurityControl(sc),
            &c,
            &SERVER_TITLE,
            &mut counter,
        );
        assert_eq!(r, Err(err.clone()));
        let mut apdu = gb_ae_apdu();
        apdu[2] = sc;
        assert_eq!(unprotect_fresh(&apdu, &SERVER_TITLE), Err(err));
    }
    // A glo-get-request that does not contain a get-request is refused.
    let set = protect_with(
        SecurityPolicy::AuthenticatedEncrypted,
        Envelope::GeneralGlo,
        &plain,
        5,
    );
    assert!(unprotect_fresh(&set, &SERVER_TITLE).is_ok());
    let mut wrong = protect_with(
        SecurityPolicy::AuthenticatedEncrypted,
        Envelope::Glo,
        &h("C1010000080000010000FF020009 00"),
        5,
    );
    wrong[0] = 0xC8; // glo-get-request claiming a set-request inside
    assert!(matches!(
        unprotect_fresh(&wrong, &SERVER_TITLE),
        Err(SecurityError::Malformed(_))
    ));
}

#[test]
fn hls_failures() {
    let c = cipher();
    let secret = HlsSecret::new([7; 16]);
    for hls in [Hls::Mechanism2(&secret), Hls::Mechanism5(&c)] {
        let challenge = b"12345678";
        let f = hls_response(hls, challenge, &CLIENT_TITLE, 3).expect("f");
        assert_eq!(hls_verify(hls, challenge, &f, &CLIENT_TITLE), Ok(()));
        let mut bad = f.clone();
        *bad.last_mut().expect("non-empty") ^= 1;
        assert_eq!(
            hls_verify(hls, challenge, &bad, &CLIENT_TITLE),
            Err(SecurityError::AuthenticationFailed)
        );
        assert_eq!(
            hls_verify(hls, b"87654321", &f, &CLIENT_TITLE),
            Err(SecurityError::AuthenticationFailed)
        );
        assert_eq!(
            hls_verify(hls, challenge, &f[..f.len() - 1], &CLIENT_TITLE),
            Err(SecurityError::AuthenticationFailed)
        );
        assert_eq!(
            hls_verify(hls, challenge, &[], &CLIENT_TITLE),
            Err(SecurityError::AuthenticationFailed)
        );
        for len in [0usize, 7, 65] {
            let challenge = vec![0x55; len];
            assert_eq!(
                hls_response(hls, &challenge, &CLIENT_TITLE, 3),
                Err(SecurityError::ChallengeLength(len))
            );
            assert_eq!(
                hls_verify(hls, &challenge, &f, &CLIENT_TITLE),
                Err(SecurityError::ChallengeLength(len))
            );
        }
        assert!(hls_response(hls, &[0x55; 64], &CLIENT_TITLE, 3).is_ok());
    }
    // A different HLS secret does not verify.
    let other = HlsSecret::new([8; 16]);
    let f = hls_response(Hls::Mechanism2(&secret), b"abcdefgh", &CLIENT_TITLE, 0).expect("f");
    assert_eq!(
        hls_verify(Hls::Mechanism2(&other), b"abcdefgh", &f, &CLIENT_TITLE),
        Err(SecurityError::AuthenticationFailed)
    );
}

#[test]
fn secrets_never_show_in_debug() {
    let keys = GlobalKeys {
        encryption: [0xAB; 16],
        authentication: [0xCD; 16],
    };
    let c = Suite0Cipher::new(&keys);
    let s = HlsSecret::new([0xEF; 16]);
    let shown = format!("{keys:?} {c:?} {s:?} {:?}", Hls::Mechanism2(&s));
    for needle in ["171", "205", "239", "AB", "ab", "CD", "cd", "EF", "ef"] {
        assert!(!shown.contains(needle), "{needle} in {shown}");
    }
}

// ---- Properties ---------------------------------------------------------------------------------

fn policy() -> impl Strategy<Value = SecurityPolicy> {
    prop_oneof![
        Just(SecurityPolicy::Authenticated),
        Just(SecurityPolicy::Encrypted),
        Just(SecurityPolicy::AuthenticatedEncrypted),
    ]
}

fn envelope() -> impl Strategy<Value = Envelope> {
    prop_oneof![
        Just(Envelope::Glo),
        Just(Envelope::Ded),
        Just(Envelope::GeneralGlo),
        Just(Envelope::GeneralDed),
    ]
}

proptest! {
    #[test]
    fn encrypt_then_decrypt_round_trips(
        plain in proptest::collection::vec(any::<u8>(), 0..600),
        policy in policy(),
        ic in any::<u32>(),
        title in any::<[u8; 8]>(),
        ek in any::<[u8; 16]>(),
        ak in any::<[u8; 16]>(),
    ) {
        let c = Suite0Cipher::with_keys(&ek, &ak);
        let sc = SecurityControl::new(policy);
        let out = c.encrypt(sc, &title, ic, &plain).unwrap();
        let tag = if policy.authenticated() { 12 } else { 0 };
        prop_assert_eq!(out.len(), 5 + plain.len() + tag);
        if policy.encrypted() && plain.len() >= 8 {
            prop_assert_ne!(&out[5..5 + plain.len()], &plain[..]);
        }
        let d = c.decrypt(&title, &out).unwrap();
        prop_assert_eq!(d.plaintext, plain.clone());
        prop_assert_eq!(d.invocation_counter, ic);
        prop_assert_eq!(d.security_control, sc);
        let mut buf = out.clone();
        let (_, _, len) = c.decrypt_in_place(&title, &mut buf).unwrap();
        prop_assert_eq!(&buf[5..5 + len], &plain[..]);
    }

    #[test]
    fn protect_then_unprotect_round_trips(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        service in prop::sample::select(vec![0xC0u8, 0xC1, 0xC3, 0xC4, 0xC5, 0xC7, 0x01, 0x08]),
        policy in policy(),
        envelope in envelope(),
        ic in 0u32..u32::MAX,
    ) {
        let mut plain = vec![service];
        plain.extend(body);
        let c = cipher();
        let sc = SecurityControl::new(policy);
        let mut counter = InvocationCounter::new(ic);
        let bytes = protect(&plain, envelope, sc, &c, &SERVER_TITLE, &mut counter).unwrap();
        let parsed = CipheredApdu::decode(&bytes).unwrap();
        prop_assert_eq!(parsed.envelope, envelope);
        prop_assert_eq!(parsed.invocation_counter, ic);
        let mut guard = ReplayGuard::new();
        let u = unprotect(&bytes, &c, &SERVER_TITLE, policy, &mut guard).unwrap();
        prop_assert_eq!(u.apdu, plain);
        if policy.authenticated() {
            prop_assert_eq!(guard.last_accepted(), Some(ic));
            prop_assert!(unprotect(&bytes, &c, &SERVER_TITLE, policy, &mut guard).is_err());
        } else {
            // Encryption only: nothing proves who chose the counter, so it is not recorded.
            prop_assert_eq!(guard.last_accepted(), None);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = CipheredApdu::decode(&bytes);
        let _ = unprotect(&bytes, &cipher(), &SERVER_TITLE, SecurityPolicy::None, &mut ReplayGuard::new());
        let _ = cipher().decrypt(&SERVER_TITLE, &bytes);
        let _ = dlms::security::gmac_invocation_counter(&bytes);
    }

    #[test]
    fn mutated_envelopes_never_panic_and_never_verify(
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        policy in prop_oneof![
            Just(SecurityPolicy::Authenticated),
            Just(SecurityPolicy::AuthenticatedEncrypted),
        ],
        envelope in envelope(),
    ) {
        let plain = h(GB_GET_REQUEST);
        let bytes = protect_with(policy, envelope, &plain, 99);
        // The envelope tag itself is not authenticated in suite 0 (glo <-> ded only changes
        // which key the caller must use), so mutate from the byte after it.
        let mut bad = bytes.clone();
        let i = 1 + at.index(bad.len() - 1);
        bad[i] ^= flip;
        let r = unprotect(&bad, &cipher(), &SERVER_TITLE, policy, &mut ReplayGuard::new());
        prop_assert!(r.is_err(), "byte {} flipped by {:02x} still verified", i, flip);
    }
}
