//! Server certificates made like NetAuth's own generator.

use rcgen::{
    date_time_ymd, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

/// A server certificate and its private key, both PEM.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of Debug output.
        f.debug_struct("TlsIdentity")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

/// Like NetAuth's own generator: a self-signed ECDSA P-256 leaf,
/// `CA:FALSE`, extended key usage serverAuth, subjectAltNames = `names`
/// (each an IP address or a DNS name). The first name is the common name.
pub fn generate_tls_identity(names: &[&str]) -> TlsIdentity {
    let sans: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans).expect("valid subjectAltNames");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "NetAuth test server");
    if let Some(first) = names.first() {
        dn.push(DnType::CommonName, *first);
    }
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = date_time_ymd(2000, 1, 1);
    params.not_after = date_time_ymd(2099, 12, 31);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("P-256 key generation");
    let cert = params.self_signed(&key).expect("self-signing");
    TlsIdentity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}
