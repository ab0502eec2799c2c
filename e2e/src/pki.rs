//! The test clusters' certificates. [`Ca`] signs serving and client certificates; [`write`]
//! makes the bare control plane's set (one CA, the API server's serving certificate, an admin
//! client certificate in `system:masters`, a service-account key) and [`write_cluster`] the
//! real cluster's, which adds a client certificate per component, a front-proxy CA and
//! serving names for the node address and the `kubernetes` Service.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate and its key, PEM-encoded.
pub(crate) struct Pem {
    pub cert: String,
    pub key: String,
}

/// A certificate authority that signs leaf certificates for the tests.
pub(crate) struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert: String,
}

impl Ca {
    /// A new self-signed CA named `cn`.
    pub(crate) fn new(cn: &str) -> anyhow::Result<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?.pem();
        Ok(Self {
            issuer: Issuer::new(params, key),
            cert,
        })
    }

    /// The CA certificate (PEM).
    pub(crate) fn cert(&self) -> &str {
        &self.cert
    }

    /// A serving certificate for `names` (DNS names or IP addresses).
    pub(crate) fn serving(&self, cn: &str, names: &[&str]) -> anyhow::Result<Pem> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_string()).collect();
        let mut params = CertificateParams::new(names)?;
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params)
    }

    /// A client certificate: Kubernetes reads the user from `cn` and the groups from `orgs`.
    pub(crate) fn client(&self, cn: &str, orgs: &[&str]) -> anyhow::Result<Pem> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, cn);
        for org in orgs {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *org);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params)
    }

    fn sign(&self, params: CertificateParams) -> anyhow::Result<Pem> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}

/// Paths of the PEM files written by [`write`].
#[derive(Debug, Clone)]
pub(crate) struct PkiFiles {
    pub ca_cert: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
}

/// The names every API server certificate carries, besides the cluster's own addresses.
const APISERVER_NAMES: [&str; 4] = [
    "127.0.0.1",
    "localhost",
    "kubernetes",
    "kubernetes.default.svc",
];

/// Generates the bare control plane's PKI and writes it to `dir`.
pub(crate) fn write(dir: &Path) -> anyhow::Result<PkiFiles> {
    write_with(dir, &[]).map(|(files, _)| files)
}

/// Writes the CA, the API server's serving certificate (for [`APISERVER_NAMES`] and `extra`),
/// the admin client certificate and the service-account key; returns the CA for more leaves.
fn write_with(dir: &Path, extra: &[&str]) -> anyhow::Result<(PkiFiles, Ca)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let ca = Ca::new("prodready-e2e-ca")?;
    let names: Vec<&str> = APISERVER_NAMES.iter().chain(extra).copied().collect();
    let serving = ca.serving("kube-apiserver", &names)?;
    let admin = ca.client("e2e-admin", &["system:masters"])?;
    let sa_key = KeyPair::generate()?;

    let files = PkiFiles {
        ca_cert: dir.join("ca.crt"),
        serving_cert: dir.join("apiserver.crt"),
        serving_key: dir.join("apiserver.key"),
        admin_cert: dir.join("admin.crt"),
        admin_key: dir.join("admin.key"),
        sa_key: dir.join("sa.key"),
        sa_pub: dir.join("sa.pub"),
    };
    let contents = [
        (&files.ca_cert, ca.cert().to_string()),
        (&files.serving_cert, serving.cert),
        (&files.serving_key, serving.key),
        (&files.admin_cert, admin.cert),
        (&files.admin_key, admin.key),
        (&files.sa_key, sa_key.serialize_pem()),
        (&files.sa_pub, sa_key.public_key_pem()),
    ];
    for (path, pem) in contents {
        write_file(path, &pem)?;
    }
    Ok((files, ca))
}

fn write_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

/// A client certificate written to `<dir>/<name>.crt` and `<dir>/<name>.key`.
#[derive(Debug, Clone)]
pub(crate) struct ClientFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Writes `pem` to `<dir>/<name>.crt` and `<dir>/<name>.key`.
fn write_pem(dir: &Path, name: &str, pem: &Pem) -> anyhow::Result<ClientFiles> {
    let files = ClientFiles {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    };
    write_file(&files.cert, &pem.cert)?;
    write_file(&files.key, &pem.key)?;
    Ok(files)
}

/// The real cluster's PKI: [`PkiFiles`] plus one client certificate per component and the
/// front-proxy (request-header) CA and client the API server and the controllers expect.
#[derive(Debug, Clone)]
pub(crate) struct ClusterPki {
    pub base: PkiFiles,
    pub controller_manager: ClientFiles,
    pub scheduler: ClientFiles,
    pub kubelet: ClientFiles,
    pub kube_proxy: ClientFiles,
    /// The API server's client certificate towards the kubelet (logs, exec, port-forward).
    pub apiserver_kubelet: ClientFiles,
    pub front_proxy_ca: PathBuf,
    pub front_proxy_client: ClientFiles,
}

/// Generates the real cluster's PKI into `dir`. `names` are the API server's extra serving
/// names (the node address, the `kubernetes` Service IP); `node` is the node's name.
pub(crate) fn write_cluster(dir: &Path, names: &[&str], node: &str) -> anyhow::Result<ClusterPki> {
    let (base, ca) = write_with(dir, names)?;
    let client = |file: &str, cn: &str, orgs: &[&str]| write_pem(dir, file, &ca.client(cn, orgs)?);
    let controller_manager = client("controller-manager", "system:kube-controller-manager", &[])?;
    let scheduler = client("scheduler", "system:kube-scheduler", &[])?;
    let kubelet = client("kubelet", &format!("system:node:{node}"), &["system:nodes"])?;
    let kube_proxy = client("kube-proxy", "system:kube-proxy", &[])?;
    let apiserver_kubelet = client(
        "apiserver-kubelet",
        "kube-apiserver-kubelet-client",
        &["system:masters"],
    )?;

    let front = Ca::new("prodready-e2e-front-proxy-ca")?;
    let front_proxy_ca = dir.join("front-proxy-ca.crt");
    write_file(&front_proxy_ca, front.cert())?;
    let front_proxy_client = write_pem(
        dir,
        "front-proxy-client",
        &front.client("front-proxy-client", &[])?,
    )?;
    Ok(ClusterPki {
        base,
        controller_manager,
        scheduler,
        kubelet,
        kube_proxy,
        apiserver_kubelet,
        front_proxy_ca,
        front_proxy_client,
    })
}
