//! HTTPS on the gateway: a certificate from a test CA, HTTP/1.1 and
//! HTTP/2 chosen by ALPN, and a new certificate taken on SIGHUP. Real
//! `rouse serve`, rustls and hyper clients.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// A CA, and a certificate it signed for `localhost` and 127.0.0.1 written
/// as `cert.pem` and `key.pem` in `dir`; returns the CA's certificate.
fn issue(dir: &Path) -> CertificateDer<'static> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
    ca.der().clone()
}

#[allow(deprecated)] // ring's provider, as the server uses
fn client_config(ca: &CertificateDer<'static>, alpn: &[u8]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

/// One GET over TLS with ALPN `alpn`: the HTTP version and the JSON body.
async fn get_tls(
    addr: &str,
    ca: &CertificateDer<'static>,
    alpn: &[u8],
) -> Result<(http::Version, serde_json::Value), String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(client_config(ca, alpn));
    let name = ServerName::try_from("localhost").unwrap();
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let io = TokioIo::new(tls);
    let req = http::Request::get("https://localhost/tls/x")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = if alpn == b"h2" {
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        send.send_request(req).await.map_err(|e| e.to_string())?
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        send.send_request(req).await.map_err(|e| e.to_string())?
    };
    let version = resp.version();
    assert_eq!(resp.status(), 200);
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((
        version,
        serde_json::from_slice(&body).map_err(|e| e.to_string())?,
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_a_test_ca_over_http1_and_http2_and_a_reload_on_sighup() {
    let tmp = open_tempdir();
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let ca = issue(&certs);
    let cert = certs.join("cert.pem");
    let key = certs.join("key.pem");
    let server = Server::start_with(
        &tmp.path().join("data"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(server.gateway.starts_with("https://"), "{}", server.gateway);
    let manifest = "service: tls\nfunctions:\n  app:\n    web:\n      command: [\"python3\", \"-u\", \"app.py\"]\n    events:\n      - http: { path: \"/tls/{proxy+}\", method: any }\n";
    server.deploy(&project(
        tmp.path(),
        "tls",
        manifest,
        &[("app.py", &fixture_app())],
    ));
    let addr = server.gateway.trim_start_matches("https://").to_string();

    let (version, doc) = get_tls(&addr, &ca, b"http/1.1")
        .await
        .expect("HTTP/1.1 over TLS");
    assert_eq!(version, http::Version::HTTP_11);
    assert_eq!(doc["headers"]["x-forwarded-proto"], "https", "{doc}");
    let (version, _) = get_tls(&addr, &ca, b"h2").await.expect("HTTP/2 over TLS");
    assert_eq!(version, http::Version::HTTP_2);

    // A certificate from another CA, taken on SIGHUP: the old CA no
    // longer verifies new handshakes, the new one does.
    let new_ca = issue(&certs);
    signal(server.pid(), nix::sys::signal::Signal::SIGHUP);
    let mut switched = false;
    for _ in 0..50 {
        if get_tls(&addr, &new_ca, b"h2").await.is_ok() {
            switched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(switched, "the new certificate is served after SIGHUP");
    assert!(
        get_tls(&addr, &ca, b"h2").await.is_err(),
        "the old CA no longer verifies"
    );
}
