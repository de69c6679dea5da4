"""Client encryption for a local node (`db start --tls`): a throw-away CA and a node certificate.

Made with the JDK's `keytool` (the JDK is needed anyway): a CA, and one key pair for every node of the
cluster signed by it, naming each node's address (IP subject alternative names), so clients verify the
certificate and the host name as they would in production. The node's PKCS12 keystore holds its key
and chain; clients get the CA as PEM (`--tls-ca-file`). Everything lives in `<base dir>/tls/` and is
made again when the node addresses change. Never use these files outside a development machine:
the keystore password sits beside them.
"""

from __future__ import annotations

import secrets
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from player_sessions.cassandra_local.config import LauncherConfig
from player_sessions.cassandra_local.errors import LauncherError

VALIDITY_DAYS = 365
KEYTOOL_TIMEOUT_S = 60


@dataclass(frozen=True)
class TlsFiles:
    dir: Path
    password: str

    @property
    def ca_pem(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def keystore(self) -> Path:
        return self.dir / "node.p12"

    def client_context(self) -> ssl.SSLContext:
        """What a client that trusts this CA uses: certificate and host name verified."""
        return ssl.create_default_context(cafile=str(self.ca_pem))


def tls_dir(config: LauncherConfig) -> Path:
    return config.base_dir.resolve() / "tls"


def existing(config: LauncherConfig) -> TlsFiles | None:
    """The files a `db start --tls` made in this base dir, if any (status and stop probe with them)."""
    folder = tls_dir(config)
    try:
        return TlsFiles(folder, (folder / "password").read_text().strip())
    except OSError:
        return None


def ensure_certificates(config: LauncherConfig) -> TlsFiles:
    """The CA and node keystore for this cluster's addresses, made once and reused."""
    folder = tls_dir(config)
    addresses = ",".join(config.address(i) for i in range(1, config.nodes + 1))
    files = existing(config)
    marker = folder / "addresses"
    if (
        files is not None
        and files.ca_pem.is_file()
        and files.keystore.is_file()
        and marker.is_file()
        and marker.read_text().strip() == addresses
    ):
        return files
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, mode=0o700)
    files = TlsFiles(folder, secrets.token_urlsafe(18))
    (folder / "password").write_text(files.password + "\n")
    (folder / "password").chmod(0o600)
    store = ["-storetype", "PKCS12", "-storepass", files.password, "-keypass", files.password]
    ca_store = [*store, "-keystore", str(folder / "ca.p12")]
    node_store = [*store, "-keystore", str(files.keystore)]
    sans = "SAN=" + ",".join(f"ip:{a}" for a in addresses.split(",")) + ",dns:localhost"
    validity = ["-validity", str(VALIDITY_DAYS)]
    _keytool(
        "-genkeypair",
        "-alias",
        "ca",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        *validity,
        "-dname",
        "CN=player-sessions local CA",
        "-ext",
        "bc:c",
        *ca_store,
    )
    _keytool("-exportcert", "-rfc", "-alias", "ca", "-file", str(files.ca_pem), *ca_store)
    _keytool(
        "-genkeypair",
        "-alias",
        "node",
        "-keyalg",
        "RSA",
        "-keysize",
        "2048",
        *validity,
        "-dname",
        f"CN={config.address(1)}",
        *node_store,
    )
    _keytool("-certreq", "-alias", "node", "-file", str(folder / "node.csr"), *node_store)
    _keytool(
        "-gencert",
        "-alias",
        "ca",
        "-rfc",
        "-infile",
        str(folder / "node.csr"),
        "-outfile",
        str(folder / "node.pem"),
        *validity,
        "-ext",
        sans,
        "-ext",
        "KU=digitalSignature,keyEncipherment",
        "-ext",
        "EKU=serverAuth",
        *ca_store,
    )
    _keytool("-importcert", "-alias", "ca", "-file", str(files.ca_pem), "-noprompt", *node_store)
    _keytool("-importcert", "-alias", "node", "-file", str(folder / "node.pem"), *node_store)
    marker.write_text(addresses + "\n")
    return files


def yaml_block(files: TlsFiles | None) -> str:
    """cassandra.yaml's client_encryption_options: TLS only on the CQL port (no plain-text fallback)."""
    if files is None:
        return ""
    return (
        "client_encryption_options:\n"
        "  enabled: true\n"
        "  optional: false\n"
        f"  keystore: {files.keystore}\n"
        f"  keystore_password: {files.password}\n"
        f"  truststore: {files.keystore}\n"
        f"  truststore_password: {files.password}\n"
        "  store_type: PKCS12\n"
        "  require_client_auth: false\n"
    )


def _keytool(*args: str) -> None:
    keytool = shutil.which("keytool")
    if keytool is None:
        raise LauncherError("keytool (part of the JDK) is not on PATH", "install JDK 17 to use --tls")
    proc = subprocess.run(
        [keytool, *args], capture_output=True, text=True, check=False, timeout=KEYTOOL_TIMEOUT_S
    )
    if proc.returncode != 0:
        raise LauncherError(
            f"keytool {args[0]} failed while making the TLS certificates",
            "see its output below",
            details=(proc.stdout + proc.stderr).strip()[-2000:],
        )
