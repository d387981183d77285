//! Reading a plugin's standard output: the `ExecCredential` it must print.
//!
//! Guarantees: the output must be an `ExecCredential` of the configured
//! apiVersion with a `status` holding a `token` and/or
//! `clientCertificateData` + `clientKeyData` (both or neither), and an
//! optional RFC 3339 `expirationTimestamp`. Every rejection says what is
//! wrong without quoting the output, which carries the credential.

use serde_json::Value;

use crate::SecretString;
use crate::auth::Credential;
use crate::pem::ClientIdentity;
use crate::time::parse_rfc3339;

/// Parses and checks an ExecCredential. Errors never quote the output.
pub(super) fn parse_output(stdout: &[u8], api_version: &str) -> Result<Credential, String> {
    let value: Value =
        serde_json::from_slice(stdout).map_err(|e| format!("output is not JSON ({e})"))?;
    let Value::Object(obj) = value else {
        return Err("output is not a JSON object".to_owned());
    };
    match obj.get("kind").and_then(Value::as_str) {
        Some("ExecCredential") => {}
        _ => return Err("kind is not `ExecCredential`".to_owned()),
    }
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(format!(
                "apiVersion is `{v}`, but the kubeconfig asks for `{api_version}`"
            ));
        }
        None => return Err("apiVersion is missing".to_owned()),
    }
    let Some(Value::Object(status)) = obj.get("status") else {
        return Err("status is missing or not an object".to_owned());
    };
    let string = |key: &str| -> Result<Option<&str>, String> {
        match status.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("status.{key} is not a string")),
        }
    };
    let token = string("token")?;
    let cert = string("clientCertificateData")?;
    let key = string("clientKeyData")?;
    let expires_at = string("expirationTimestamp")?
        .map(|ts| parse_rfc3339(ts).map_err(|e| format!("status.expirationTimestamp: {e}")))
        .transpose()?;
    let identity = match (cert, key) {
        (Some(cert), Some(key)) => Some(
            ClientIdentity::from_pem_with_origin(
                cert.as_bytes().to_vec(),
                "status.clientCertificateData",
                key.as_bytes().to_vec(),
                "status.clientKeyData",
            )
            .map_err(|e| e.to_string())?,
        ),
        (None, None) => None,
        _ => {
            return Err(
                "status has only one of clientCertificateData and clientKeyData; both are needed"
                    .to_owned(),
            );
        }
    };
    if token.is_none() && identity.is_none() {
        return Err(
            "status has neither a token nor clientCertificateData and clientKeyData".to_owned(),
        );
    }
    Ok(Credential {
        token: token.map(SecretString::new),
        basic: None,
        identity,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::EXEC_API_V1;

    #[test]
    fn output_checks() {
        let v1 = EXEC_API_V1;
        let ok = br#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"t","expirationTimestamp":"2099-01-01T00:00:00Z"}}"#;
        let cred = parse_output(ok, v1).expect("ok");
        assert_eq!(cred.token.as_ref().map(|t| t.expose()), Some("t"));
        assert!(cred.expires_at.is_some());
        let e = |out: &str| parse_output(out.as_bytes(), v1).unwrap_err();
        assert_eq!(
            e("secret-ish garbage"),
            "output is not JSON (expected value at line 1 column 1)"
        );
        assert_eq!(e("[]"), "output is not a JSON object");
        assert_eq!(e(r#"{"kind":"Other"}"#), "kind is not `ExecCredential`");
        assert_eq!(
            e(
                r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","status":{"token":"t"}}"#
            ),
            "apiVersion is `client.authentication.k8s.io/v1beta1`, but the kubeconfig asks for `client.authentication.k8s.io/v1`"
        );
        assert_eq!(
            e(r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1"}"#),
            "status is missing or not an object"
        );
        assert_eq!(
            e(
                r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{}}"#
            ),
            "status has neither a token nor clientCertificateData and clientKeyData"
        );
        assert_eq!(
            e(
                r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":5}}"#
            ),
            "status.token is not a string"
        );
        assert_eq!(
            e(
                r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"clientKeyData":"k"}}"#
            ),
            "status has only one of clientCertificateData and clientKeyData; both are needed"
        );
        assert_eq!(
            e(
                r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"t","expirationTimestamp":"soon"}}"#
            ),
            "status.expirationTimestamp: `soon` is not an RFC 3339 timestamp: too short"
        );
    }
}
