"""Makes the TLS fixtures of the integration tests: a test CA and a certificate it signs for
127.0.0.1 and localhost, and another CA that signs nothing (ECDSA P-256, valid for 100 years). Run it again to replace them; the
tests read whatever is here. Needs the `openssl` command."""

import pathlib
import subprocess
import tempfile

HERE = pathlib.Path(__file__).parent
DAYS = "36500"


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def main() -> None:
    ca_key, ca_crt = HERE / "ca.key", HERE / "ca.crt"
    key, crt = HERE / "server.key", HERE / "server.crt"
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(ca_key))
    openssl("req", "-x509", "-new", "-key", str(ca_key), "-sha256", "-days", DAYS,
            "-subj", "/CN=Sextant test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", str(ca_crt))
    # PKCS#8: what rustls and PostgreSQL both read.
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(key))
    with tempfile.TemporaryDirectory() as tmp:
        csr, ext = pathlib.Path(tmp) / "server.csr", pathlib.Path(tmp) / "server.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                       "basicConstraints=critical,CA:FALSE\n"
                       "keyUsage=critical,digitalSignature\n"
                       "extendedKeyUsage=serverAuth\n")
        openssl("req", "-new", "-key", str(key), "-subj", "/CN=localhost", "-out", str(csr))
        openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
                "-CAcreateserial", "-days", DAYS, "-sha256", "-extfile", str(ext), "-out", str(crt))
    (HERE / "ca.srl").unlink(missing_ok=True)
    # The CA's key is not needed once it has signed: nothing else may be signed with it.
    ca_key.unlink()
    # Another CA, which signed nothing here: roots that do not include the test CA.
    with tempfile.TemporaryDirectory() as tmp:
        other_key = pathlib.Path(tmp) / "other.key"
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(other_key))
        openssl("req", "-x509", "-new", "-key", str(other_key), "-sha256", "-days", DAYS,
                "-subj", "/CN=Sextant other CA", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", str(HERE / "other-ca.crt"))


if __name__ == "__main__":
    main()
